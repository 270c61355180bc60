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


def test_store_indexes_pages_and_search_returns_boxes(tmp_path):
    from PIL import Image

    from mirsearch.index.sheets import SheetStore
    from mirsearch.search.sheets import SheetSearchOptions, search_sheets

    page, boxes = synthetic_page()
    Image.fromarray(page).save(tmp_path / "p.png")
    (tmp_path / "notes.txt").write_text("not a page")
    bundle = tiny_bundle()
    store = SheetStore(tmp_path / "store")
    report = store.update([tmp_path], bundle)
    assert (report.added, report.pages, report.failed) == (1, 1, [])
    assert report.windows == len(store.windows()) > 0
    assert store.update([tmp_path], bundle).unchanged == 1
    y = np.random.default_rng(0).standard_normal(22050 * 3).astype(np.float32) * 0.1
    matches = search_sheets(store, bundle, y, 22050, SheetSearchOptions(sub_seconds=2.0, top=3))
    assert 1 <= len(matches) <= 3 and matches[0].page == 1
    assert tuple(matches[0].box) in {tuple(int(v) for v in s) for s in store.items()[0]["pages"][0]["systems"]}
    assert np.abs(np.subtract(store.items()[0]["pages"][0]["systems"], boxes)).max() <= 2


def test_cli_indexes_pages_and_finds_a_system(tmp_path, monkeypatch, capsys):
    import json

    import soundfile as sf
    from PIL import Image

    import mirsearch.service.sheets as service_sheets
    from mirsearch.cli.main import main

    monkeypatch.setattr(service_sheets, "_BUNDLE", tiny_bundle())
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
