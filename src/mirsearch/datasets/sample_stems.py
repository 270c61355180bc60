"""Single-instrument stems played with real recorded instrument samples, for the auto-tagger (issue 19).

The stems of :mod:`mirsearch.datasets.tag_stems` are rendered with SoundFonts; the tagger then learns the
SoundFonts' timbres and loses on one it never heard. This module renders the same kind of stem (a part, or all
parts, of a train or validation work of ``--preset tags``, with its own performance and recording chain) with
recordings of instruments instead:

- **Piano**: the Salamander Grand Piano (:mod:`mirsearch.datasets.samples`, 30 notes a minor third apart;
  ``benchmarks/train_mutopia.py samples --out data/samples``) and the two piano samples of ``lmms-common``.
- **Other families**: the pitched samples of the Debian packages ``lmms-common`` and ``sonic-pi-samples``
  (``apt-get download NAME && dpkg -x NAME_*.deb data/real/pkgs/NAME``), one recording per instrument, listed in
  :data:`SAMPLES` with the General MIDI program they stand for and the pitch of the recording (the median pYIN
  estimate of its first 2 s, MIDI, to 0.01; checked against the spectrum's harmonics). Samples of chords or with an
  unstable pitch (``e_piano_accord*``, ``e_organ01`` and ``heaven_strings01`` (major triads), ``rave_choir01``,
  ``violin_double_stop01``, ``guit_*`` of sonic-pi, ``korg_poly6_drone01``, ``nord_ambient01``, ``bell_choir*``,
  ``space_strings03``, ``ambi_choir``, ``ambi_piano``) are left out; the four ``steel_guitar*`` recordings are a
  fourth (G3 + C4, a power chord; pYIN hears their common period, C2) and stand at C4 here; lmms'
  ``harpsichord01.ogg`` is a WAV file that libsndfile refuses (malformed ``fmt`` chunk). **Drums** are not
  rendered here (the kit samples exist but the tagger's drum family is already at 0.99); every other family has at
  least one recording, brass (one trumpet) and woodwinds (one flute) only one.

A note is played by the recording nearest in pitch, transposed by resampling (ratio ``2 ** (d / 12)``, as
:class:`~mirsearch.datasets.samples.SampledPiano` does) by at most ``max_shift`` semitones; a note farther from
every recording is moved by octaves into that range (a stem's pitch classes stay; one recording cannot play five
octaves). Sustained instruments (organ, strings, winds, pads) loop the middle of their recording with a
cross-fade when a note outlasts it; plucked and struck ones ring out and stop. Velocity gain as in
:func:`~mirsearch.datasets.samples.velocity_gain`; each recording is first brought to one RMS level.

``build_sample_stems`` writes ``audio/<clip>.flac`` (16 kHz) and ``labels/<clip>.json`` (``"kind": "sample"``,
``"soundfont": null``, ``"instrument"``, ``"programs"``, ``"tags": [family]``) and ``manifest.jsonl``, like
``--preset tag-stems``, so ``python -m mirsearch.training.tagger --sample-stems DIR`` can mix them in. Test works
never get stems. Deterministic for a seed; resumable (finished labels are kept).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsearch._util import atomic_write_text
from mirsearch.datasets.performance import perform, sample_params, stable_seed
from mirsearch.datasets.tag_stems import _LEAD, REAL_PACKAGES, STEM_SECONDS, stem_score
from mirsearch.datasets.tags import CLIP_SR, TagsBuildReport, _midi, choose_sources, metre_of, split_of
from mirsearch.describe.tag_vocabulary import FAMILY_PROGRAMS
from mirsearch.errors import InputError, MirsearchError, ParameterError

logger = logging.getLogger(__name__)

#: folder of the Salamander samples as ``benchmarks/train_mutopia.py samples --out data/samples`` leaves them
SALAMANDER = Path(__file__).resolve().parents[3] / "data" / "samples" / "piano-velocity10-1.0.5"
_LMMS = "lmms-common/usr/share/lmms/samples"
_SONIC = "sonic-pi-samples/usr/share/sonic-pi/samples"
#: RMS of a recording (over its loudest second) before the velocity gain
LEVEL = 0.1
#: largest transposition of a one-recording instrument (semitones; farther notes move by octaves)
MAX_SHIFT = 7.0
#: release time constant (s) of a sustained note after its end
RELEASE = 0.08


@dataclass(frozen=True)
class Sample:
    """One recorded note of an instrument.

    Attributes
    ----------
    path : str
        File, relative to the packages folder (``data/real/pkgs``).
    instrument : str
        Name of the instrument the recording belongs to (several recordings may make one instrument).
    family : str
        Instrument family of the tag vocabulary.
    program : int
        The General MIDI program (0-127) the recording stands for; inside ``FAMILY_PROGRAMS[family]``.
    root : float
        MIDI pitch of the recording (fractional: the recording's own tuning).
    sustained : bool
        Loop the middle of the recording when a note outlasts it (organs, bowed strings, winds, pads).
    """

    path: str
    instrument: str
    family: str
    program: int
    root: float
    sustained: bool


def _s(path, instrument, family, program, root, sustained):
    return Sample(path, instrument, family, program, root, sustained)


#: the recordings used and their mapping to General MIDI (pitches: pYIN medians, see the module docstring)
SAMPLES: tuple[Sample, ...] = (
    _s(f"{_LMMS}/instruments/piano01.ogg", "lmms-piano01", "piano", 0, 60.11, False),
    _s(f"{_LMMS}/instruments/piano02.ogg", "lmms-piano02", "piano", 0, 48.01, False),
    _s(f"{_LMMS}/instruments/church_organ01.ogg", "lmms-church-organ", "organ", 19, 69.01, True),
    _s(f"{_LMMS}/instruments/church_organ02.ogg", "lmms-church-organ", "organ", 19, 57.01, True),
    _s(f"{_LMMS}/instruments/church_organ03.ogg", "lmms-church-organ-b", "organ", 19, 57.01, True),
    _s(f"{_LMMS}/instruments/church_organ04.ogg", "lmms-church-organ-b", "organ", 19, 45.01, True),
    _s(f"{_LMMS}/instruments/steel_guitar01.ogg", "lmms-steel-guitar", "guitar", 25, 59.91, False),
    _s(f"{_LMMS}/instruments/steel_guitar_slight_distorted01.ogg", "lmms-guitar-slight", "guitar", 29, 59.91, False),
    _s(f"{_LMMS}/instruments/steel_guitar_medium_distorted01.ogg", "lmms-guitar-medium", "guitar", 30, 59.91, False),
    _s(f"{_LMMS}/instruments/steel_guitar_heavy_distorted01.ogg", "lmms-guitar-heavy", "guitar", 30, 59.91, False),
    _s(f"{_LMMS}/instruments/bassslap01.ogg", "lmms-slap-bass", "bass", 36, 38.11, False),
    _s(f"{_LMMS}/instruments/bassslap02.ogg", "lmms-slap-bass", "bass", 36, 36.01, False),
    _s(f"{_LMMS}/basses/bass01.ogg", "lmms-bass01", "bass", 38, 36.11, False),
    _s(f"{_LMMS}/basses/bass_hard01.ogg", "lmms-bass-hard", "bass", 38, 32.11, False),
    _s(f"{_LMMS}/basses/bass_hard02.ogg", "lmms-bass-hard", "bass", 38, 36.11, False),
    _s(f"{_LMMS}/basses/bass_acid02.ogg", "lmms-bass-acid", "bass", 39, 36.01, False),
    _s(f"{_SONIC}/bass_voxy_c.flac", "sonic-bass-voxy", "bass", 39, 36.01, False),
    _s(f"{_SONIC}/bass_woodsy_c.flac", "sonic-bass-woodsy", "bass", 38, 36.01, False),
    _s(f"{_SONIC}/bass_trance_c.flac", "sonic-bass-trance", "bass", 39, 36.01, False),
    _s(f"{_LMMS}/instruments/cello01.ogg", "lmms-cello", "strings", 42, 37.81, True),
    _s(f"{_LMMS}/instruments/violin_fingered01.ogg", "lmms-violin", "strings", 40, 66.91, True),
    _s(f"{_LMMS}/instruments/violin_pizzicato01.ogg", "lmms-violin-pizzicato", "strings", 45, 67.01, False),
    _s(f"{_LMMS}/stringsnpads/strings01.ogg", "lmms-strings", "strings", 48, 60.01, True),
    _s(f"{_LMMS}/stringsnpads/orion_string01.ogg", "lmms-orion-strings", "strings", 50, 60.01, True),
    _s(f"{_LMMS}/stringsnpads/space_strings01.ogg", "lmms-space-strings", "strings", 51, 36.01, True),
    _s(f"{_LMMS}/stringsnpads/chorus01.ogg", "lmms-chorus", "voice", 54, 72.01, True),
    _s(f"{_LMMS}/stringsnpads/chorus02.ogg", "lmms-chorus", "voice", 54, 57.01, True),
    _s(f"{_LMMS}/instruments/trumpet01.ogg", "lmms-trumpet", "brass", 56, 68.91, True),
    _s(f"{_LMMS}/instruments/flute01.ogg", "lmms-flute", "woodwinds", 73, 80.91, True),
    _s(f"{_LMMS}/stringsnpads/juno_pad01.ogg", "lmms-juno-pad", "synth", 89, 72.11, True),
    _s(f"{_SONIC}/ambi_drone.flac", "sonic-ambi-drone", "synth", 95, 48.21, True),
)


def family_table(samples: tuple[Sample, ...] = SAMPLES) -> dict[str, list[str]]:
    """Instruments per family (``{"piano": ["lmms-piano01", ...], ...}``; Salamander not included)."""
    out: dict[str, list[str]] = {}
    for s in samples:
        if s.instrument not in out.setdefault(s.family, []):
            out[s.family].append(s.instrument)
    return out


def _check(sample: Sample) -> None:
    if sample.family not in FAMILY_PROGRAMS or sample.program not in FAMILY_PROGRAMS[sample.family]:
        raise ParameterError(f"{sample.path}: program {sample.program} is not of family {sample.family!r}")
    if not 0 < sample.root < 128:
        raise ParameterError(f"{sample.path}: root pitch {sample.root} outside MIDI 0-127")


def _read(path: Path, sr: int) -> np.ndarray:
    """Mono float32 at ``sr`` brought to :data:`LEVEL` RMS over its loudest second."""
    from mirsearch.datasets.samples import read_mono

    y = read_mono(path, sr)
    if len(y) < sr // 20 or not np.any(y):
        raise InputError(f"{path}: shorter than 50 ms or silent")
    n = min(len(y), sr)
    c = np.cumsum(np.r_[0.0, y.astype(np.float64) ** 2])
    power = (c[n:] - c[:-n]) / n  # the moving mean over n samples ("valid"), in O(len(y))
    return np.ascontiguousarray(y * (LEVEL / np.sqrt(power.max() + 1e-12)), dtype=np.float32)


def _looped(y: np.ndarray, n: int, sr: int) -> np.ndarray:
    """``y`` extended to ``n`` samples by looping its middle (25 %-80 %) with a 30 ms cross-fade."""
    if len(y) >= n:
        return y
    a, b = int(0.25 * len(y)), int(0.8 * len(y))
    fade = min(int(0.03 * sr), (b - a) // 3)
    loop = y[a:b].astype(np.float64)
    ramp = np.linspace(0.0, 1.0, fade)
    out = y[:b].astype(np.float64)
    while len(out) < n:
        head = out[-fade:] * (1 - ramp) + loop[:fade] * ramp
        out = np.concatenate([out[:-fade], head, loop[fade:]])
    return out[:n].astype(np.float32)


class SampleInstrument:
    """An instrument of recorded notes (one or more :class:`Sample` of one ``instrument`` name, or a folder of
    Salamander-named notes), rendering notes by transposing the nearest recording.

    Parameters
    ----------
    samples : sequence of Sample
        The recordings (all of one family).
    packages : path
        Folder the samples' paths are relative to.
    sr : int
        Output sample rate (Hz).
    max_shift : float
        Largest transposition (semitones); notes farther from every recording move by octaves.

    Raises
    ------
    ParameterError
        No samples, mixed families, a program outside the family or a bad root pitch.
    """

    def __init__(self, samples, *, packages: str | os.PathLike = REAL_PACKAGES, sr: int = CLIP_SR,
                 max_shift: float = MAX_SHIFT) -> None:  # fmt: skip
        samples = list(samples)
        if not samples:
            raise ParameterError("an instrument needs at least one sample")
        for s in samples:
            _check(s)
        if len({s.family for s in samples}) > 1:
            raise ParameterError(f"samples of several families: {sorted({s.family for s in samples})}")
        if sr <= 0 or not 0 < max_shift:
            raise ParameterError(f"sr={sr} and max_shift={max_shift} must be > 0")
        self.samples = sorted(samples, key=lambda s: s.root)
        self.family, self.name = samples[0].family, samples[0].instrument
        self.program = samples[0].program
        self.packages, self.sr, self.max_shift = Path(packages), int(sr), float(max_shift)
        self._roots = np.array([s.root for s in self.samples])
        self._audio: dict[int, np.ndarray] = {}

    @classmethod
    def salamander(cls, directory: str | os.PathLike = SALAMANDER, *, sr: int = CLIP_SR) -> SampleInstrument:
        """The Salamander grand piano (GM 0) from its folder (:func:`~mirsearch.datasets.samples.index_samples`)."""
        from mirsearch.datasets.samples import index_samples

        index = index_samples(directory)
        samples = [Sample(str(p), "salamander", "piano", 0, float(k), False) for k, p in index.items()]
        return cls(samples, packages="/", sr=sr, max_shift=2.0)

    def audio(self, k: int) -> np.ndarray:
        """The recording of ``self.samples[k]`` at the instrument's rate (loaded once)."""
        if k not in self._audio:
            self._audio[k] = _read(self.packages / self.samples[k].path, self.sr)
        return self._audio[k]

    def placement(self, pitch: float) -> tuple[int, float]:
        """``(recording index, transposition in semitones)`` that plays ``pitch`` (moved by octaves into
        ``max_shift`` of the nearest recording when needed)."""
        p = float(pitch)
        lo, hi = self._roots[0] - self.max_shift, self._roots[-1] + self.max_shift
        while p > hi:
            p -= 12.0
        while p < lo:
            p += 12.0
        k = int(np.argmin(np.abs(self._roots - p)))
        d = p - float(self._roots[k])
        if abs(d) > self.max_shift:  # a gap between recordings wider than the shift: the nearest octave
            d -= 12.0 * round(d / 12.0)
        return k, d

    def render(self, notes) -> np.ndarray:
        """Render ``notes`` (a pretty_midi Instrument or ``(pitch, start s, end s, velocity)`` tuples).

        Returns
        -------
        np.ndarray, shape (n,), float32
            From time 0 to the end of the last note (empty without notes).
        """
        from mirsearch.datasets.samples import velocity_gain

        if hasattr(notes, "notes"):
            notes = [(n.pitch, n.start, n.end, n.velocity) for n in notes.notes]
        pieces = []
        for pitch, start, end, velocity in notes:
            if end <= start or start < 0:
                raise ParameterError(f"note {pitch} from {start} s to {end} s: bad times")
            k, d = self.placement(float(pitch))
            ratio = 2.0 ** (d / 12.0)
            sustained = self.samples[k].sustained
            dur = float(end) - float(start)
            n_out = int(np.ceil((dur + 5 * RELEASE) * self.sr))
            y = self.audio(k)
            if sustained:
                y = _looped(y, int(n_out * ratio) + 2, self.sr)
            n_out = min(n_out, int((len(y) - 1) / ratio)) if sustained else int((len(y) - 1) / ratio)
            if n_out <= 0:
                continue
            x = np.interp(np.arange(n_out) * ratio, np.arange(len(y)), y)
            t = np.arange(n_out) / self.sr
            # sustained notes stop at their end; plucked ones ring a while longer (a damped string)
            off, tau = (dur, RELEASE) if sustained else (dur + 0.1, 0.25)
            x *= np.where(t < off, 1.0, np.exp(-np.maximum(t - off, 0.0) / tau)) * float(velocity_gain(velocity))
            x = x[: int((off + 5 * tau) * self.sr)]
            pieces.append((int(round(float(start) * self.sr)), x))
        if not pieces:
            return np.zeros(0, np.float32)
        out = np.zeros(max(a + len(x) for a, x in pieces))
        for a, x in pieces:
            out[a : a + len(x)] += x
        return out.astype(np.float32)


def instruments(*, packages: str | os.PathLike = REAL_PACKAGES, salamander: str | os.PathLike | None = SALAMANDER,
                sr: int = CLIP_SR) -> list[SampleInstrument]:  # fmt: skip
    """Every instrument of :data:`SAMPLES` whose files exist under ``packages`` (missing ones are logged), and the
    Salamander piano when its folder exists."""
    by_name: dict[str, list[Sample]] = {}
    for s in SAMPLES:
        if (Path(packages) / s.path).is_file():
            by_name.setdefault(s.instrument, []).append(s)
        else:
            logger.info("sample %s not found under %s", s.path, packages)
    out = [SampleInstrument(v, packages=packages, sr=sr) for v in by_name.values()]
    if salamander is not None and Path(salamander).is_dir():
        out.append(SampleInstrument.salamander(salamander, sr=sr))
    if not out:
        raise InputError(f"{packages}: no instrument samples (extract lmms-common / sonic-pi-samples there)")
    return out


# ----------------------------------------------------------------------------------------------- stems
@dataclass(frozen=True)
class SampleStemJob:
    """One stem: the work (JSON), its split, family, instrument name and index within the work."""

    clip_id: str
    score: dict
    family: str
    instrument: str
    index: int
    split: str
    seed: int


def plan_sample_stems(scores, insts: list[SampleInstrument], *, seed: int, per_work: int = 4,
                      splits: tuple = ("train", "validation")) -> list[SampleStemJob]:  # fmt: skip
    """Stems of the works of ``splits`` (never test): per work ``per_work`` stems cycling through a random order of
    the families that have instruments, each with a random instrument of its family. Deterministic for a seed."""
    if "test" in splits:
        raise ParameterError("sample stems never use the test split")
    by_family: dict[str, list[str]] = {}
    for inst in insts:
        by_family.setdefault(inst.family, []).append(inst.name)
    families = sorted(by_family)
    jobs = []
    for score in scores:
        split = split_of(score.work_id, seed=seed)
        if split not in splits:
            continue
        rng = np.random.default_rng(stable_seed(seed, score.work_id, "sample-stems"))
        order = [families[i] for i in rng.permutation(len(families))]
        for k in range(per_work):
            fam = order[k % len(order)]
            name = str(rng.choice(sorted(by_family[fam])))
            jobs.append(SampleStemJob(f"{score.work_id}-r{k}", score.to_json(), fam, name, k, split, seed))
    return jobs


def render_sample_stem(job: SampleStemJob, inst: SampleInstrument) -> tuple[np.ndarray, dict]:
    """``(audio (n,) float32 at the instrument's rate, label record without "audio")`` of one stem: the notes of
    a :data:`~mirsearch.datasets.tag_stems.STEM_SECONDS` s window where the stem sounds, played by ``inst``, then
    the stem's own recording chain (:func:`~mirsearch.datasets.render.apply_recording`)."""
    from mirsearch.datasets.corpus import ScoreData
    from mirsearch.datasets.render import apply_recording

    if inst.family != job.family:
        raise ParameterError(f"{job.clip_id}: instrument {inst.name} is {inst.family}, the job wants {job.family}")
    rng = np.random.default_rng(stable_seed(job.seed, job.clip_id, "sample-stem"))
    score, playing = stem_score(ScoreData.from_json(job.score), job.family, rng)
    programs = [[inst.program] if i in playing else [] for i in range(len(score.parts))]
    params = sample_params(score, seed=job.seed, version=200 + job.index, soundfonts=["samples"], top_part=0,
                           key_change=True, lossy=False)  # fmt: skip
    perf = perform(score, params)
    for _ in range(4):
        t0 = float(rng.uniform(0.0, max(perf.end - STEM_SECONDS - 0.3, 0.0)))
        pm, sounding = _midi(perf, programs, False, t0=t0, t1=t0 + STEM_SECONDS, lead=_LEAD, rng=rng,
                             metre=metre_of(score.time_signature), tempo_map=perf.tempo_map)  # fmt: skip
        if sounding:
            break
    else:
        raise MirsearchError(f"{job.clip_id}: no note sounds in the stem")
    notes = [(n.pitch, n.start, n.end, n.velocity) for i in pm.instruments for n in i.notes]
    sr = inst.sr
    n = int(STEM_SECONDS * sr)
    lead = int(_LEAD * sr)
    y = inst.render(notes)
    y = np.pad(y, (0, max(0, lead + n - len(y))))[: lead + n]
    y = apply_recording(y, sr=sr, recording=params.recording, seed=params.seed)[lead:][:n]
    y = np.pad(y, (0, n - len(y))).astype(np.float32)
    record = {"clip": job.clip_id, "work_id": job.score["work_id"], "split": job.split, "kind": "sample",
              "family": job.family, "soundfont": None, "instrument": inst.name, "programs": [inst.program],
              "tags": [job.family]}  # fmt: skip
    return y, record


def build_sample_stems(out_dir: str | os.PathLike, *, seed: int = 0, per_work: int = 4,
                       packages: str | os.PathLike = REAL_PACKAGES,
                       salamander: str | os.PathLike | None = SALAMANDER,
                       score_cache: str | os.PathLike | None = None, time_limit: float = 30.0,
                       splits: tuple = ("train", "validation"),
                       limit: int | None = None) -> TagsBuildReport:  # fmt: skip
    """Build (or resume) the sample stems in ``out_dir`` (see the module docstring); writes ``manifest.jsonl``.

    Parameters
    ----------
    out_dir : path
    seed : int
        The seed of ``--preset tags`` whose works and splits are used.
    per_work : int > 0
        Stems per train / validation work.
    packages, salamander : path
        Extracted Debian packages; the Salamander folder (None: no Salamander piano).
    score_cache : path, optional
        Parsed-score cache to reuse (e.g. ``data/tags/cache/scores``); default ``<out>/cache/scores``.
    time_limit : float > 0
        Seconds allowed to parse one score.
    splits : tuple of str
        Splits whose works get stems (``test`` is refused).
    limit : int, optional
        Render at most this many new stems (a partial build is a fair sample: the plan is shuffled).
    """
    from mirsearch.datasets.corpus import ScoreData, parse_many, work_id_for
    from mirsearch.datasets.render import encode

    if per_work < 1:
        raise ParameterError(f"per_work={per_work} must be >= 1")
    start = time.perf_counter()
    root = Path(out_dir)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    insts = {i.name: i for i in instruments(packages=packages, salamander=salamander)}
    cache = Path(score_cache) if score_cache else root / "cache" / "scores"
    parsed = parse_many([(s, work_id_for(s)) for s, _ in choose_sources(seed)], cache_dir=cache,
                        time_limit=time_limit)  # fmt: skip
    scores = [p for p in parsed if isinstance(p, ScoreData) and p.n_notes]
    plan = plan_sample_stems(scores, list(insts.values()), seed=seed, per_work=per_work, splits=splits)
    plan.sort(key=lambda j: stable_seed(seed, j.clip_id, "order"))
    logger.info("sample stems: %d works, %d stems planned, %d instruments", len(scores), len(plan), len(insts))
    records, failed, new = [], 0, 0
    for job in plan:
        label = root / "labels" / f"{job.clip_id}.json"
        if label.is_file():
            records.append(json.loads(label.read_text()))
            continue
        if limit is not None and new >= limit:
            continue
        try:
            y, record = render_sample_stem(job, insts[job.instrument])
        except MirsearchError as exc:
            logger.warning("sample stem %s failed: %s", job.clip_id, str(exc).splitlines()[0][:200])
            failed += 1
            continue
        audio = encode(y, root / "audio" / job.clip_id, sr=CLIP_SR, encoding="flac")
        record["audio"] = str(audio.relative_to(root))
        atomic_write_text(label, json.dumps(record, sort_keys=True) + "\n")
        records.append(record)
        new += 1
    records.sort(key=lambda r: r["clip"])
    atomic_write_text(root / "manifest.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    counts = {name: sum(r["split"] == name for r in records) for name in ("train", "validation")}
    report = TagsBuildReport(root, len(scores), counts, failed, time.perf_counter() - start)
    atomic_write_text(root / "build_info.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m mirsearch.datasets.sample_stems", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder (resumed)")
    p.add_argument("--seed", type=int, default=0, help="seed of --preset tags (works and splits)")
    p.add_argument("--per-work", type=int, default=4, help="stems per train / validation work")
    p.add_argument("--packages", default=str(REAL_PACKAGES), help="folder of the extracted Debian packages")
    p.add_argument("--salamander", default=str(SALAMANDER), help="Salamander piano folder ('' for none)")
    p.add_argument("--score-cache", default=None, help="parsed-score cache to reuse (data/tags/cache/scores)")
    p.add_argument("--limit", type=int, default=None, help="render at most this many new stems")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = build_sample_stems(args.out, seed=args.seed, per_work=args.per_work, packages=args.packages,
                                salamander=args.salamander or None, score_cache=args.score_cache,
                                limit=args.limit)  # fmt: skip
    print(json.dumps(report.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SAMPLES", "Sample", "SampleInstrument", "build_sample_stems", "family_table", "instruments",
           "plan_sample_stems", "render_sample_stem"]  # fmt: skip
