"""Sheet music: staff and system detection, engraving parsers, the model, the store and the voting search."""

from __future__ import annotations

import numpy as np
import pytest

from mirsearch.errors import InputError
from mirsearch.features.staff import binarise, detect_layout, run_lengths, system_strip

SPACE = 10  # staff space of the synthetic pages (pixels)


def synthetic_page(systems=((100, 2), (400, 2), (700, 1)), *, connect=True, width=900, height=1000, seed=0):
    """A white page with staves of five 2-pixel lines, note-like blobs, and a start bar joining each system.

    ``systems``: (top row, number of staves); staves of one system are 8 spaces apart (top to top 12).
    Returns the page (uint8, white 255) and the true system boxes (x0, top line, x1, bottom line).
    """
    rng = np.random.default_rng(seed)
    page = np.full((height, width), 255, np.uint8)
    boxes = []
    x0, x1 = 80, width - 60
    for top, n in systems:
        tops = [top + k * 12 * SPACE for k in range(n)]
        for t in tops:
            for line in range(5):
                page[t + line * SPACE : t + line * SPACE + 2, x0:x1] = 0
            for x in rng.integers(x0 + 40, x1 - 20, size=12):  # note heads with stems
                y = t + int(rng.integers(0, 9)) * SPACE // 2
                page[y - 4 : y + 4, x - 6 : x + 6] = 0
                page[y - 35 : y, x + 5 : x + 7] = 0
        bottom = tops[-1] + 4 * SPACE + 1
        if connect:
            page[top:bottom, x0 : x0 + 2] = 0
        boxes.append((x0, top, x1, bottom))
    return page, boxes


def test_run_lengths_give_line_thickness_and_staff_space():
    page, _ = synthetic_page()
    thickness, space = run_lengths(binarise(page))
    assert thickness == 2
    assert space == SPACE


def test_staves_and_systems_found_with_boxes_within_two_pixels():
    page, boxes = synthetic_page()
    layout = detect_layout(page)
    assert layout.staff_space == SPACE
    assert [len(s.staves) for s in layout.systems] == [2, 2, 1]
    for system, truth in zip(layout.systems, boxes, strict=False):
        assert np.abs(np.subtract(system.box, truth)).max() <= 2


def test_systems_split_at_large_gaps_without_start_bars():
    page, _ = synthetic_page(((60, 2), (380, 2), (700, 2)), connect=False)
    layout = detect_layout(page)
    assert [len(s.staves) for s in layout.systems] == [2, 2, 2]


def test_detection_is_invariant_to_grey_level_and_colour():
    page, _ = synthetic_page()
    grey = (page.astype(np.float32) / 255.0) * 0.6 + 0.3  # low contrast
    rgb = np.repeat(page[..., None], 3, axis=2)
    a, b, c = detect_layout(page), detect_layout(grey), detect_layout(rgb)
    assert [s.box for s in a.systems] == [s.box for s in b.systems] == [s.box for s in c.systems]


def test_blank_page_is_refused():
    with pytest.raises(InputError):
        detect_layout(np.full((200, 200), 255, np.uint8))


def test_strip_has_four_pixels_per_staff_space():
    page, _ = synthetic_page()
    layout = detect_layout(page)
    strip, scale = system_strip(page, layout.systems[2], staff_space=layout.staff_space)
    assert strip.shape[0] == 96 and scale == pytest.approx(0.4)
    rows = np.flatnonzero(strip[:, strip.shape[1] // 3 : strip.shape[1] // 3 + 5].mean(axis=1) > 0.3)
    centres = [np.mean(g) for g in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)]
    assert np.allclose(np.diff(centres), 4.0, atol=0.6)


def test_lilypond_svg_parser_reads_heads_and_staves():
    from mirsearch.datasets.sheets import group_staves, parse_lilypond_svg

    lines = "".join(
        f'<g transform="translate(10.0000, {y:.4f})">\n'
        '<line stroke-width="0.1" x1="0.0500" y1="0" x2="100.0000" y2="0"/>'
        for y in (20, 21, 22, 23, 24, 30, 31, 32, 33, 34)
    )
    head = (
        '<a style="color:inherit;" xlink:href="textedit:///t/piece.ly:12:7:8">\n<g transform="translate(40.5, 22.5)">'
    )
    svg = f'<svg width="210.00mm" viewBox="0.0000 -0.0000 132.7795 187.7882">{lines}{head}</svg>'
    heads, found, size = parse_lilypond_svg(svg)
    assert heads.tolist() == [[12, 7, 40.5, 22.5]]
    assert size == (132.7795, 187.7882)
    staves = group_staves(found)
    assert staves[:, :2].tolist() == [[20, 24], [30, 34]]


MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>P</part-name></score-part></part-list>
<part id="P1"><measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type>
</time><clef><sign>G</sign><line>2</line></clef></attributes>
<direction><sound tempo="120"/></direction>
<note><pitch><step>C</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type></note>
<note><pitch><step>D</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type></note>
<note><pitch><step>E</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type></note>
<note><pitch><step>G</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type></note>
</measure></part></score-partwise>"""


def test_verovio_engraving_pairs_heads_with_onsets():
    pytest.importorskip("verovio")
    from mirsearch.datasets.sheets import verovio_engraving

    e = verovio_engraving(MUSICXML)
    order = np.argsort(e.heads[:, 1])
    assert e.heads[order, 4].tolist() == [72, 74, 76, 79]
    assert np.allclose(e.heads[order, 3], [0.0, 0.5, 1.0, 1.5], atol=0.01)  # quarter = 0.5 s at 120 bpm
    assert len(e.systems) == 1 and set(e.head_system) == {0}
    x0, y0, x1, y1 = e.systems[0, 1:]
    assert np.all((e.heads[:, 1] > x0) & (e.heads[:, 1] < x1))
    assert np.all(e.heads[order, 2][:-1] > e.heads[order, 2][1:])  # higher pitch, smaller y


def tiny_bundle():
    import torch

    from mirsearch.models.sheets import SheetAudioModel, SheetBundle, SheetModelConfig

    torch.manual_seed(0)
    return SheetBundle(SheetAudioModel(SheetModelConfig(channels=(4, 4, 8, 8))))


def test_bundle_round_trip_and_unit_embeddings(tmp_path):
    from mirsearch.models.sheets import SheetBundle

    bundle = tiny_bundle()
    rng = np.random.default_rng(0)
    sheets = rng.random((3, 96, 112)).astype(np.float32)
    s = bundle.embed_sheet(sheets)
    assert s.shape == (3, 32) and np.allclose(np.linalg.norm(s, axis=1), 1, atol=1e-5)
    for frames in (40, 80, 160):  # attention pooling: any excerpt length
        a = bundle.embed_audio(rng.random((2, 92, frames)).astype(np.float32))
        assert a.shape == (2, 32)
    bundle.save(tmp_path / "b")
    again = SheetBundle.load(tmp_path / "b")
    assert np.allclose(again.embed_sheet(sheets), s, atol=1e-6)
    assert again.model_id == bundle.model_id != "untrained"


def test_ranking_loss_zero_when_separated_by_the_margin():
    import torch

    from mirsearch.training.sheets import ranking_loss

    eye = torch.eye(4)
    assert float(ranking_loss(eye, eye, margin=0.7)) == 0.0
    assert float(ranking_loss(eye, eye.flip(0), margin=0.7)) > 0.5


def test_vote_takes_each_systems_best_similarity_once_per_excerpt():
    from mirsearch.search.sheets import SheetSearchOptions, query_excerpts, vote

    windows = np.array([[0, 0, 0, 10], [0, 0, 0, 20], [0, 0, 1, 10], [1, 2, 0, 5]], np.float32)
    sims = np.array([[0.9, 0.8, 0.5], [0.7, 0.6, 0.1]])
    labels = np.array([[0, 1, 2], [2, 3, -1]])
    scores = vote(sims, labels, windows)
    assert scores == pytest.approx({(0, 0, 0): 0.45, (0, 0, 1): 0.6, (1, 2, 0): 0.3})
    parts = query_excerpts(np.zeros((92, 160)), feature_rate=20.0, options=SheetSearchOptions(4.0, 1.0))
    assert len(parts) == 1 + 5 and parts[1].shape == (92, 80)


def test_learned_store_indexes_pages_and_search_returns_boxes(tmp_path):
    from PIL import Image

    from mirsearch.index.sheets import LearnedReader, SheetStore
    from mirsearch.search.sheets import SheetSearchOptions, search_sheets

    page, boxes = synthetic_page()
    Image.fromarray(page).save(tmp_path / "p.png")
    (tmp_path / "notes.txt").write_text("not a page")
    bundle = tiny_bundle()
    store = SheetStore(tmp_path / "store")
    report = store.update([tmp_path], LearnedReader(bundle))
    assert (report.added, report.pages, report.failed) == (1, 1, [])
    assert report.windows == len(store.windows()) > 0
    assert store.update([tmp_path], LearnedReader(bundle)).unchanged == 1
    y = np.random.default_rng(0).standard_normal(22050 * 3).astype(np.float32) * 0.1
    matches = search_sheets(store, bundle, y, 22050, SheetSearchOptions(sub_seconds=2.0, top=3))
    assert 1 <= len(matches) <= 3 and matches[0].page == 1
    assert tuple(matches[0].box) in {tuple(int(v) for v in s) for s in store.items()[0]["pages"][0]["systems"]}
    assert np.abs(np.subtract(store.items()[0]["pages"][0]["systems"], boxes)).max() <= 2


def test_cli_indexes_pages_and_finds_a_system(tmp_path, monkeypatch, capsys):
    import json

    import soundfile as sf
    from PIL import Image

    from mirsearch.cli.main import main

    pages = tmp_path / "pages"
    pages.mkdir()
    page, _ = synthetic_page()
    Image.fromarray(page).save(pages / "p1.png")
    assert main(["index", str(pages), "--collection", str(tmp_path / "c.mirs"), "--no-progress", "-j", "1"]) == 0
    capsys.readouterr()
    y = np.random.default_rng(1).standard_normal(22050 * 4).astype(np.float32) * 0.1
    sf.write(tmp_path / "q.wav", y, 22050)
    argv = ["search", "-c", str(tmp_path / "c.mirs"), "--audio", str(tmp_path / "q.wav"), "--sheets", "--top", "2"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["matches"]) == 2 and out["query"]["top"] == 2
    first = out["matches"][0]
    assert first["recording"].endswith("p1.png") and first["page"] == 1 and len(first["box"]) == 4


# -- the optical reading (features/notation.py) and the notation search ------------------------------------------


def _musicxml(measures_treble, measures_bass=None, *, fifths=0) -> str:
    """MusicXML of quarter notes: a treble staff, and a bass staff when ``measures_bass`` is given.

    Notes are (step, alter, octave) or (step, alter, octave, printed accidental); one list of four per measure.
    """

    def notes(ms, staff):
        out = []
        for m in ms:
            out.append(
                "".join(
                    f"<note><pitch><step>{s}</step><alter>{a}</alter><octave>{o}</octave></pitch><duration>1</duration>"
                    f"<type>quarter</type>{''.join(f'<accidental>{x}</accidental>' for x in sign)}"
                    f"<staff>{staff}</staff></note>"
                    for s, a, o, *sign in m
                )
            )
        return out

    two = measures_bass is not None
    tre = notes(measures_treble, 1)
    bas = notes(measures_bass, 2) if two else [""] * len(tre)
    clefs = "<clef number='1'><sign>G</sign><line>2</line></clef>" + (
        "<clef number='2'><sign>F</sign><line>4</line></clef>" if two else ""
    )
    head = (f"<attributes><divisions>1</divisions><key><fifths>{fifths}</fifths></key><time><beats>4</beats>"
            f"<beat-type>4</beat-type></time>{'<staves>2</staves>' if two else ''}{clefs}</attributes>"
            "<direction><sound tempo='120'/></direction>")  # fmt: skip
    back = "<backup><duration>4</duration></backup>"
    measures = "".join(
        f"<measure number='{i + 1}'>{head if i == 0 else ''}{t}{back + b if two else ''}</measure>"
        for i, (t, b) in enumerate(zip(tre, bas, strict=True))
    )
    return ("<?xml version='1.0' encoding='UTF-8'?><score-partwise version='3.1'><part-list><score-part id='P1'>"
            f"<part-name>P</part-name></score-part></part-list><part id='P1'>{measures}</part>"
            "</score-partwise>")  # fmt: skip


def _engrave(musicxml):
    """(engraving, grey page 0) of MusicXML through verovio and cairosvg."""
    import io

    pytest.importorskip("verovio")
    pytest.importorskip("cairosvg")
    from PIL import Image

    from mirsearch.datasets.sheets import rasterise_svg, verovio_engraving

    e = verovio_engraving(musicxml)
    png, _, _ = rasterise_svg(e.svgs[0])
    return e, np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def test_head_pitch_class_follows_clef_and_key_signature():
    from mirsearch.errors import ParameterError
    from mirsearch.features.notation import head_pitch_class

    assert [head_pitch_class(p, "treble") for p in (-2, 0, 1, 8, 9)] == [0, 4, 5, 5, 7]  # C4, E4, F4, F5, G5
    assert [head_pitch_class(p, "bass") for p in (0, 2, 8, 10)] == [7, 11, 9, 0]  # G2, B2, A3, C4
    assert head_pitch_class(1, "treble", 2) == 6 and head_pitch_class(5, "treble", 2) == 1  # F#, C# in D major
    assert head_pitch_class(4, "treble", -1) == 10 and head_pitch_class(4, "treble", 1) == 11  # B flat in F major
    with pytest.raises(ParameterError):
        head_pitch_class(0, "alto")


def test_page_key_is_the_most_frequent_and_a_tie_goes_to_more_accidentals():
    from mirsearch.features.notation import page_key

    assert page_key([]) == 0
    assert page_key([2, 2, 0, 2]) == 2 and page_key([-3, -3, 1]) == -3
    assert page_key([0, 1, 0, 1]) == 1 and page_key([-2, 0]) == -2  # a missed accidental is the likelier error


def test_engraved_grand_staff_is_read_with_clefs_key_and_pitches():
    from mirsearch.features.notation import head_pitch_class, read_page

    scale = [("D", 0, 5), ("E", 0, 5), ("F", 1, 5), ("G", 0, 5)], [("A", 0, 5), ("B", 0, 5), ("C", 1, 6), ("D", 0, 6)]
    bass = [("D", 0, 3), ("F", 1, 3), ("A", 0, 3), ("D", 0, 3)], [("G", 0, 2), ("B", 0, 2), ("C", 1, 3), ("E", 0, 3)]
    e, page = _engrave(_musicxml(scale, bass, fifths=2))
    layout = detect_layout(page)
    readings = read_page(page, layout)
    assert len(readings) == 1 and readings[0].clefs == ("treble", "bass") and readings[0].key == 2
    got = {(h.staff, head_pitch_class(h.position, readings[0].clefs[h.staff], 2)) for h in readings[0].heads}
    want = {(0, n % 12) for n in (74, 76, 78, 79, 81, 83, 85, 86)} | {(1, n % 12) for n in (50, 54, 57, 43, 47, 49, 52)}
    assert got == want
    assert len(readings[0].heads) == 16


def _random_piece(n_measures, seed):
    rng = np.random.default_rng(seed)
    steps = [("C", 5), ("D", 5), ("E", 5), ("F", 5), ("G", 5), ("A", 5), ("B", 5), ("C", 6), ("G", 4), ("A", 4)]
    bass = [("C", 3), ("D", 3), ("E", 3), ("F", 3), ("G", 3), ("A", 2), ("B", 2), ("G", 2)]
    tre = [[(*steps[i][:1], 0, steps[i][1]) for i in rng.integers(len(steps), size=4)] for _ in range(n_measures)]
    bas = [[(*bass[i][:1], 0, bass[i][1]) for i in rng.integers(len(bass), size=4)] for _ in range(n_measures)]
    return _musicxml(tre, bas)


def _synthesise(heads, *, sr=22050):
    """Harmonic tones (0.45 s, decaying) at each (onset seconds, MIDI pitch) of an engraving's heads."""
    t_end = heads[:, 3].max() + 1.0
    y = np.zeros(int(t_end * sr), np.float32)
    t = np.arange(int(0.45 * sr)) / sr
    for onset, pitch in heads[:, [3, 4]]:
        f = 440.0 * 2 ** ((pitch - 69) / 12)
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-4 * t)
        i = int(onset * sr)
        y[i : i + len(tone)] += tone[: len(y) - i].astype(np.float32)
    return y / np.abs(y).max()


def test_synthesised_snippet_is_found_at_its_system(tmp_path):
    from PIL import Image

    from mirsearch.index.sheets import NotationReader, SheetStore
    from mirsearch.search.sheets import NotationSearchOptions, search_sheets_notation

    e, page = _engrave(_random_piece(20, seed=3))
    Image.fromarray(page).save(tmp_path / "page.png")
    store = SheetStore(tmp_path / "store")
    report = store.update([tmp_path / "page.png"], NotationReader())
    assert report.added == 1 and store.features().shape[1] == 24 and len(store.features()) == report.windows
    page0 = e.heads[:, 0] == 0
    heads, systems = e.heads[page0], e.head_system[page0]
    y = _synthesise(heads)
    assert len(store.items()[0]["pages"][0]["systems"]) == len(set(systems.tolist())) >= 3
    found = 0
    for k in sorted(set(systems.tolist()))[:3]:
        onsets = heads[systems == k, 3]
        middle = (onsets.min() + onsets.max()) / 2
        snippet = y[int((middle - 2.0) * 22050) : int((middle + 2.0) * 22050)]  # 4 s inside system k
        matches = search_sheets_notation(store, snippet, 22050, NotationSearchOptions(top=3))
        found += matches[0].system == k and matches[0].page == 1
    assert found == 3


def test_system_costs_find_the_system_of_a_query_also_across_a_system_break():
    from mirsearch.search.sheets import system_costs

    rng = np.random.default_rng(0)
    n = 30  # samples per system; three systems of one item, then one system of another item
    F = np.eye(12, dtype=np.float32)[np.repeat(rng.integers(0, 12, size=4 * n // 2), 2)]
    F += 0.05
    W = np.zeros((4 * n, 4), np.float32)
    W[:, 2] = np.repeat([0, 1, 2, 0], n)
    W[3 * n :, 0] = 1
    W[:, 3] = np.tile(np.arange(n), 4)
    keys, cost = system_costs(F, W, [F[n + 5 : n + 20].T])  # inside system 1
    assert keys.tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [1, 0, 0]]
    assert int(np.argmin(cost)) == 1
    keys, cost = system_costs(F, W, [F[2 * n - 6 : 2 * n + 12].T])  # from system 1 into 2, middle in 2
    assert int(np.argmin(cost)) == 2
    stretched = np.repeat(F[5:25].T, 2, axis=1)  # system 0 played at half the speed
    assert int(np.argmin(system_costs(F, W, [stretched])[1])) == 0


def test_accidentals_hold_to_the_end_of_their_bar():
    from mirsearch.features.notation import pitch_classes, read_page

    bar1 = [("G", 0, 5), ("B", -1, 4, "flat"), ("G", 0, 5), ("B", -1, 4)]  # G5 Bb4 G5 Bb4 (the flat holds)
    bar2 = [("G", 0, 5), ("B", 0, 4), ("G", 0, 5), ("G", 0, 5)]  # G5 B4 (the bar line resets) G5 G5
    e, page = _engrave(_musicxml([bar1, bar2, bar1, bar2]))
    (reading,) = read_page(page, detect_layout(page))
    assert len(reading.bars[0]) >= 3
    columns = {}  # one note's head may be found twice side by side
    for h, pc in zip(reading.heads, pitch_classes(reading), strict=True):
        if not any(abs(h.x - x) < 15 for x in columns):
            columns[h.x] = (h.accidental, pc)
    assert [pc for _, pc in columns.values()] == [7, 10, 7, 10, 7, 11, 7, 7] * 2
    assert [a for a, _ in columns.values()][:4] == ["", "flat", "", ""]


def test_a_sharp_with_its_middle_filled_still_has_two_strokes():
    from mirsearch.features.notation import accidental_at, glyphs, small_holes

    ink = np.zeros((60, 60), bool)  # staff space 10 px; a sharp 1 space wide, 2.8 high, left of a head at (32, 24)
    ink[10:38, 13] = ink[10:38, 17] = True  # its two strokes
    ink[17:22, 11:20] = ink[26:31, 11:20] = True  # its two thick bars around an enclosed middle
    holes = small_holes(ink, space=10.0)
    assert holes[22:26, 14:17].all()
    clean = ink | holes  # what the reader sees: the middle filled (the strokes join into one block)
    assert accidental_at(glyphs(clean, holes), 32.0, 24.0, space=10.0) == "other"
    assert accidental_at(glyphs(clean), 32.0, 24.0, space=10.0) == ""  # the stroke count without the holes


def test_touching_sharps_and_naturals_are_read_and_told_apart():
    from mirsearch.features.notation import pitch_classes, read_page

    bar = [("F", 1, 5, "sharp"), ("G", 0, 4), ("F", 0, 4, "natural"), ("C", 1, 5, "sharp")]  # F#5 G4 F4 C#5
    e, page = _engrave(_musicxml([bar, [("G", 0, 4)] * 4]))  # verovio sets these accidentals against their heads
    (reading,) = read_page(page, detect_layout(page))
    marked = [(h.accidental, pc) for h, pc in zip(reading.heads, pitch_classes(reading), strict=True) if h.accidental]
    assert marked == [("other", 6), ("natural", 5), ("other", 1)]


def test_a_flat_touching_its_head_is_told_from_a_chord_stem_by_its_length_place_and_bowl():
    from mirsearch.features.notation import glyphs, small_holes, touching_accidental

    yy, xx = np.mgrid[:50, :60]
    head = ((xx - 40) / 6.5) ** 2 + ((yy - 30) / 4.5) ** 2 <= 1.0  # staff space 10 px; the head at (40, 30)

    def read(ink):
        holes = small_holes(ink, space=10.0)
        return touching_accidental(glyphs(ink | holes, holes), 40.0, 30.0, space=10.0)

    flat = head.copy()
    flat[12:36, 24:26] = True  # the flat's stroke, from 1.8 spaces above the head's middle to 0.6 below
    flat[24:36, 24:34] = True  # its bowl, touching the head, around an enclosed inside
    filled = flat.copy()
    flat[27:33, 26:32] = False
    assert read(flat) == "flat"
    assert read(filled) == ""  # no bowl: a stroke and a block
    longer = flat.copy()
    longer[4:12, 24:26] = True  # rising 2.6 spaces: a stem up to another head or a beam
    assert read(longer) == ""
    second = head | (((xx - 27) / 6.5) ** 2 + ((yy - 35) / 4.5) ** 2 <= 1.0)  # a second below, left of the stem
    second[12:36, 33:35] = True  # the chord's stem beside the head
    assert read(second) == ""


def test_touching_flats_are_read_and_their_filled_bowl_is_no_head():
    from mirsearch.features.notation import pitch_classes, read_page

    bar = [("B", -1, 4, "flat"), ("G", 0, 4), ("E", -1, 5, "flat"), ("A", -1, 4, "flat")]  # Bb4 G4 Eb5 Ab4
    e, page = _engrave(_musicxml([bar, [("G", 0, 4)] * 4]))  # verovio sets the last two flats against their heads
    (reading,) = read_page(page, detect_layout(page))
    first_bar = [pc for h, pc in zip(reading.heads, pitch_classes(reading), strict=True) if h.x < reading.bars[0][0]]
    assert sorted(set(first_bar)) == [3, 7, 8, 10]


def test_altered_pitch_class_cancels_or_raises_by_the_key():
    from mirsearch.features.notation import altered_pitch_class

    assert altered_pitch_class(5, 6, "other") == 5  # F natural in D major
    assert altered_pitch_class(5, 5, "other") == 6  # F sharp in C major
    assert altered_pitch_class(11, 10, "other") == 11  # B natural in F major
    assert altered_pitch_class(11, 11, "flat") == 10 and altered_pitch_class(0, 0, "") == 0
    assert altered_pitch_class(5, 6, "natural") == 5 and altered_pitch_class(5, 5, "natural") == 5


def test_held_notes_sound_until_the_next_chord_of_their_staff():
    from mirsearch.errors import ParameterError
    from mirsearch.features.notation import Head, SystemReading, system_features

    # a bass C (staff 1) under a treble melody E F G A (staff 0), 4 staff spaces apart, 10 px a space
    heads = [Head(x, 0.0, 0, p) for x, p in ((10.0, 0), (50.0, 1), (90.0, 2), (130.0, 3))]
    heads.append(Head(10.0, 0.0, 1, -4))  # bass clef position -4: C
    reading = SystemReading(tuple(sorted(heads, key=lambda h: h.x)), ("treble", "bass"), 0, 160)
    plain = system_features(reading, space=10.0)
    held = system_features(reading, space=10.0, hold_spaces=8.0)
    assert plain.shape == held.shape == (12, 32)
    assert held[0, 28] > 0.15 and plain[0, 28] < 0.05  # the bass C still sounds under the last melody note
    assert held[9, 28] >= plain[9, 28] > 0.5  # A, the melody note of the moment
    with pytest.raises(ParameterError):
        system_features(reading, space=10.0, hold_spaces=0.0)


def test_music_span_drops_the_clef_zone_and_keeps_a_tail():
    from mirsearch.features.notation import Head, SystemReading, music_span, system_features

    reading = SystemReading((Head(60.0, 0.0, 0, 0), Head(100.0, 0.0, 0, 2)), ("treble",), 0, 200)
    span = music_span(reading, space=10.0, tail_spaces=4.0)  # samples of 5 px: heads at samples 12 and 20
    assert (span.start, span.stop) == (12, 29)
    f = system_features(reading, space=10.0)
    assert not f[:, : span.start].any() and f[:, span.start].any()
    empty = SystemReading((), ("treble",), 0, 200)
    assert music_span(empty, space=10.0) == slice(0, 40)


def test_head_midi_and_bass_band_follow_clef_octaves():
    from mirsearch.features.notation import bass_gain, head_midi

    assert head_midi(0, "treble", 4) == 64 and head_midi(-2, "treble", 0) == 60  # E4, middle C on a ledger line
    assert head_midi(0, "bass", 7) == 43 and head_midi(10, "bass", 0) == 60  # G2, middle C above the bass staff
    assert head_midi(1, "treble", 6) == 66 and head_midi(6, "treble", 10) == 70  # F#4, Bb4 (read as such)
    assert head_midi(-1, "treble", 1) == 61 and head_midi(-3, "treble", 11) == 59  # D flat 4, B3
    assert bass_gain([40, 56, 60, 64, 80]).tolist() == [1.0, 1.0, 0.5, 0.0, 0.0]


def test_register_features_split_bass_from_melody():
    from mirsearch.features.notation import BASS_WEIGHT, Head, SystemReading, register_features

    # a treble E4 at x 10 and a bass C3 (G2 + 3 steps) at x 60, 10 px a staff space
    reading = SystemReading((Head(10.0, 0.0, 0, 0), Head(60.0, 0.0, 1, 3)), ("treble", "bass"), 0, 120)
    f = register_features(reading, space=10.0, hold_spaces=8.0)
    assert f.shape == (24, 24) and f.dtype == np.float32
    assert not f[12:, :12].any()  # the treble E4 is above the bass band
    assert np.argmax(f[12:, 12]) == 0 and np.isclose(np.linalg.norm(f[12:, 12]), BASS_WEIGHT)  # C3
    assert np.allclose(np.linalg.norm(f[:12, 2:], axis=0), 1.0)


def test_query_chroma_has_a_bass_half_for_low_notes_only():
    from mirsearch.features.notation import BASS_WEIGHT
    from mirsearch.search.sheets import query_chroma

    sr = 22050
    t = np.arange(2 * sr) / sr
    low = np.sin(2 * np.pi * 130.81 * t)  # C3
    high = np.sin(2 * np.pi * 659.26 * t)  # E5
    y = 0.5 * low + 0.5 * high
    (Q,) = query_chroma(y, sr, rates=(8.0,), gamma=10.0)
    assert Q.shape == (24, 16)
    middle = Q[:, 4:12]
    assert np.all(np.argmax(middle[12:], axis=0) == 0)  # bass half: C
    assert np.allclose(np.linalg.norm(middle[12:], axis=0), BASS_WEIGHT, atol=1e-4)
    assert np.all(middle[4] > 0.9) and np.all(middle[0] > 0.1)  # full half: E, and C (register weighted)


def test_middle_systems_follow_the_path_not_the_middle_sample():
    from mirsearch.search.sheets import middle_systems, system_costs

    rng = np.random.default_rng(1)
    n = 30  # two systems of one item, then one of another
    F = np.eye(12, dtype=np.float32)[rng.integers(0, 12, size=3 * n)] + 0.05
    W = np.zeros((3 * n, 4), np.float32)
    W[:, 2] = np.repeat([0, 1, 0], n)
    W[2 * n :, 0] = 1
    W[:, 3] = np.tile(np.arange(n), 3)
    # 8 samples of system 0 at one frame each, then 8 of system 1 at two frames each: the match spans samples
    # 22-37 (middle sample 29, system 0) but the query's middle frame (12) sounds sample 32 (system 1)
    Q = np.concatenate([F[22:30].T, np.repeat(F[30:38].T, 2, axis=1)], axis=1)
    assert int(np.argmin(system_costs(F, W, [Q])[1])) == 0
    keys, cost = middle_systems(F, W, [Q])
    assert int(np.argmin(cost)) == 1 and np.isfinite(cost[0]) and cost[0] > cost[1]


def test_a_store_of_the_older_12d_reader_is_read_again_and_refused_before(tmp_path):
    from dataclasses import dataclass

    from PIL import Image

    from mirsearch.index.sheets import NotationReader, SheetStore
    from mirsearch.search.sheets import NotationSearchOptions, search_sheets_notation

    @dataclass(frozen=True)
    class Older:  # what notation-5 stored: 12 numbers a sample
        model_id: str = "notation-5-step0.5-decay2-hold8.0-tail4"
        dim: int = 12
        ann: bool = False

        def page_windows(self, image):
            info = {"width": image.shape[1], "height": image.shape[0], "staff_space": 10.0,
                    "systems": [[0, 0, image.shape[1], 40]]}  # fmt: skip
            return np.full((40, 12), 0.3, np.float32), np.column_stack([np.zeros(40), np.arange(40.0)]), info

    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(tmp_path / "page.png")
    store = SheetStore(tmp_path / "store")
    store.update([tmp_path / "page.png"], Older())
    assert store.features().shape == (40, 12)
    y = np.sin(2 * np.pi * 440.0 * np.arange(22050) / 22050)
    with pytest.raises(InputError):
        search_sheets_notation(store, y, 22050, NotationSearchOptions())
    report = SheetStore(tmp_path / "store").update([tmp_path / "page.png"], NotationReader())
    assert report.added == 1 and report.unchanged == 0  # the same file read again by the new reader
    store = SheetStore(tmp_path / "store")
    assert store.model_id() == NotationReader().model_id and store.features().shape[1] == 24
