"""The real-soundtrack clip builder on a tiny fake package tree."""

import io
import zipfile

import numpy as np
import soundfile as sf

from mirsearch.datasets.soundtracks import build_soundtracks, clip_starts, find_tracks, load_manifest


def _tone(seconds, freq, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _fake_pkgs(root):
    pk3 = root / "ufoai-music/usr/share/games/ufoai/base/0music.pk3"
    pk3.parent.mkdir(parents=True)
    with zipfile.ZipFile(pk3, "w") as zf:
        for i, name in enumerate(["music/a.ogg", "music/b.ogg", "music/c.ogg"]):
            buf = io.BytesIO()
            sf.write(buf, _tone(5.0, 200 + 100 * i), 22050, format="OGG")
            zf.writestr(name, buf.getvalue())
    song = root / "fretsonfire-songs-sectoid/usr/share/games/fretsonfire/data/songs/sectoid/Song One"
    song.mkdir(parents=True)
    sf.write(song / "song.ogg", _tone(3.0, 300), 22050)
    sf.write(song / "guitar.ogg", _tone(3.5, 500), 22050)
    moh = root / "asterisk-moh-opsound-wav/usr/share/asterisk/moh"
    moh.mkdir(parents=True)
    sf.write(moh / "short.wav", _tone(0.5, 440, 8000), 8000)


def test_clip_starts():
    assert clip_starts(20.0, clip_seconds=30.0, clips=4, skip_seconds=5.0) == [0.0]
    assert clip_starts(65.0, clip_seconds=30.0, clips=4, skip_seconds=5.0) == [5.0, 35.0]
    starts = clip_starts(200.0, clip_seconds=30.0, clips=4, skip_seconds=5.0)
    assert len(starts) == 4 and bool(np.all(np.diff(starts) >= 30.0))
    assert starts[-1] + 30.0 <= 200.0


def test_build_is_track_disjoint_and_resumable(tmp_path):
    _fake_pkgs(tmp_path / "pkgs")
    tracks = find_tracks(tmp_path / "pkgs")
    assert [(t.soundtrack, t.name) for t in tracks] == [
        ("ufoai", "a"), ("ufoai", "b"), ("ufoai", "c"), ("fretsonfire-sectoid", "Song One"), ("opsound", "short"),
    ]  # fmt: skip
    assert len(tracks[3].sources) == 2
    out = tmp_path / "out"
    clips = build_soundtracks(tmp_path / "pkgs", out, clip_seconds=2.0, clips_per_track=2, min_seconds=1.0,
                              skip_seconds=0.5)  # fmt: skip
    assert {c.soundtrack for c in clips} == {"ufoai", "fretsonfire-sectoid"}  # the 0.5 s track is skipped
    splits = {}
    for c in clips:
        splits.setdefault(c.track, set()).add(c.split)
    assert all(len(s) == 1 for s in splits.values())
    assert [splits[n].pop() for n in ("a", "b", "c")] == ["train", "test", "train"]
    y, sr = sf.read(out / clips[-1].path)
    assert sr == 22050 and len(y) == 2 * 22050
    # the stems are mixed: both tones are in the clip
    spec = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    assert spec[np.argmin(np.abs(freqs - 300))] > 100 and spec[np.argmin(np.abs(freqs - 500))] > 100
    mtime = (out / clips[0].path).stat().st_mtime_ns
    again = build_soundtracks(tmp_path / "pkgs", out, clip_seconds=2.0, clips_per_track=2, min_seconds=1.0,
                              skip_seconds=0.5)  # fmt: skip
    assert again == clips == load_manifest(out)
    assert (out / clips[0].path).stat().st_mtime_ns == mtime
