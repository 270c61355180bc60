"""Works for benchmark collections: choose scores and parse them into plain note lists.

A *work* is one score (a chorale, a quartet movement, a madrigal, a folk tune) turned into a
:class:`ScoreData`: per part the notes as ``(pitch, onset, duration, fermata)`` with onsets and durations
in quarter notes, the nominal tempo, the measure starts and some metadata. Everything downstream
(themes, performances, rendering) works on this plain, JSON-serialisable form, so music21 is needed only
here and parsed works can be cached on disk.

Sources are written as strings: ``"corpus:bach/bwv66.6.mxl"`` (a file of the music21 corpus),
``"corpus:essenFolksong/altdeu10.abc#5"`` (tune number 5 of a corpus collection) or an absolute path of a
user file (MusicXML, MIDI, kern, ABC). Parsing runs with a time limit per file; failures are returned,
not raised, so that a builder can skip them and count them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mirsearch._util import atomic_write_text
from mirsearch.errors import InputError, ParameterError

logger = logging.getLogger(__name__)

#: file extensions read from a user folder of scores
SCORE_EXTENSIONS = (".mxl", ".musicxml", ".xml", ".mid", ".midi", ".krn", ".abc")

#: version of the parsed-score cache format; bump when ScoreData or parsing changes
CACHE_VERSION = 3

#: quarter-note tempo (bpm) for common tempo words, used when a score has no metronome mark
TEMPO_WORDS = (
    ("prestissimo", 200.0),
    ("presto", 176.0),
    ("vivacissimo", 172.0),
    ("vivace", 156.0),
    ("allegro assai", 160.0),
    ("allegro molto", 160.0),
    ("allegretto", 116.0),
    ("allegro", 138.0),
    ("moderato", 108.0),
    ("andantino", 96.0),
    ("andante", 80.0),
    ("menuetto", 132.0),
    ("minuet", 132.0),
    ("scherzo", 160.0),
    ("adagietto", 72.0),
    ("adagio", 60.0),
    ("larghetto", 60.0),
    ("lento", 54.0),
    ("largo", 50.0),
    ("grave", 46.0),
)


class ParseTimeout(BaseException):
    """Raised inside a parse that exceeded its time limit.

    A ``BaseException`` so that broad ``except Exception`` clauses inside parsers do not swallow it.
    """


@dataclass(frozen=True)
class PartData:
    """One part (voice or instrument) of a work.

    Attributes
    ----------
    name : str
        Part name from the score (``"Soprano"``, ``"Violin 1"``), may be empty.
    notes : tuple of (int, float, float, bool)
        ``(pitch, onset, duration, fermata)`` sorted by onset then pitch; pitch is a MIDI number,
        onset and duration are in quarter notes from the start of the (repeat-expanded) work.
    """

    name: str
    notes: tuple[tuple[int, float, float, bool], ...]

    @property
    def mean_pitch(self) -> float:
        """Duration-weighted mean MIDI pitch (0 for an empty part)."""
        total = sum(n[2] for n in self.notes)
        if total <= 0:
            return 0.0
        return sum(n[0] * n[2] for n in self.notes) / total


@dataclass(frozen=True)
class ScoreData:
    """A parsed work, reduced to what the dataset builder needs.

    Attributes
    ----------
    work_id : str
        Stable identifier derived from the source (``"bach-bwv66.6"``).
    source : str
        ``"corpus:<path>[#number]"`` or the absolute path of a user file.
    title, composer : str
        Metadata, may be empty.
    category : str
        ``"chorale"``, ``"quartet"``, ``"vocal"``, ``"folk"``, ``"other"`` or ``"user"``.
    parts : tuple of PartData
        Non-empty parts in score order.
    tempo_bpm : float
        Nominal tempo in quarter notes per minute (from the score, a tempo word, or the metre).
    time_signature : str
        First time signature (``"4/4"``), ``""`` if unknown.
    measure_starts : tuple of float
        Onset of every measure in quarter notes (after repeat expansion).
    duration_q : float
        Length of the work in quarter notes (end of the last note).
    repeats_expanded : bool
        True if repeat signs were written out.
    """

    work_id: str
    source: str
    title: str
    composer: str
    category: str
    parts: tuple[PartData, ...]
    tempo_bpm: float
    time_signature: str
    measure_starts: tuple[float, ...]
    duration_q: float
    repeats_expanded: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def nominal_seconds(self) -> float:
        """Duration in seconds at the nominal tempo."""
        return self.duration_q * 60.0 / self.tempo_bpm

    @property
    def n_notes(self) -> int:
        """Number of notes over all parts."""
        return sum(len(p.notes) for p in self.parts)

    def truncated(self, n_measures: int) -> ScoreData:
        """Return the first ``n_measures`` measures (notes cut at the measure line).

        Parameters
        ----------
        n_measures : int > 0
            Number of measures to keep; the whole work if it is shorter.
        """
        if n_measures <= 0:
            raise ParameterError(f"n_measures={n_measures} must be > 0")
        if len(self.measure_starts) <= n_measures:
            return self
        end = self.measure_starts[n_measures]
        parts = []
        for part in self.parts:
            notes = tuple((p, o, min(d, end - o), f) for (p, o, d, f) in part.notes if o < end - 1e-9)
            if notes:
                parts.append(PartData(part.name, notes))
        duration = max((o + d for part in parts for (_, o, d, _) in part.notes), default=0.0)
        return ScoreData(
            work_id=self.work_id,
            source=self.source,
            title=self.title,
            composer=self.composer,
            category=self.category,
            parts=tuple(parts),
            tempo_bpm=self.tempo_bpm,
            time_signature=self.time_signature,
            measure_starts=self.measure_starts[:n_measures],
            duration_q=duration,
            repeats_expanded=self.repeats_expanded,
            extra={**self.extra, "measures": n_measures},
        )

    def to_json(self) -> dict:
        """JSON-serialisable dict (inverse of :meth:`from_json`)."""
        return {
            "work_id": self.work_id,
            "source": self.source,
            "title": self.title,
            "composer": self.composer,
            "category": self.category,
            "parts": [{"name": p.name, "notes": [list(n) for n in p.notes]} for p in self.parts],
            "tempo_bpm": self.tempo_bpm,
            "time_signature": self.time_signature,
            "measure_starts": list(self.measure_starts),
            "duration_q": self.duration_q,
            "repeats_expanded": self.repeats_expanded,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict) -> ScoreData:
        """Rebuild from :meth:`to_json` output."""
        parts = tuple(
            PartData(p["name"], tuple((int(a), float(b), float(c), bool(d)) for a, b, c, d in p["notes"]))
            for p in data["parts"]
        )
        return cls(
            work_id=data["work_id"],
            source=data["source"],
            title=data["title"],
            composer=data["composer"],
            category=data["category"],
            parts=parts,
            tempo_bpm=float(data["tempo_bpm"]),
            time_signature=data["time_signature"],
            measure_starts=tuple(float(x) for x in data["measure_starts"]),
            duration_q=float(data["duration_q"]),
            repeats_expanded=bool(data["repeats_expanded"]),
            extra=dict(data.get("extra", {})),
        )


@dataclass(frozen=True)
class ParseFailure:
    """A source that could not be used, with a one-line reason."""

    source: str
    reason: str


# --------------------------------------------------------------------------------------------------
# identifiers and source lists


def slugify(text: str) -> str:
    """Turn a path-like string into an identifier of ``[A-Za-z0-9._-]`` characters."""
    text = text.replace("/", "-").replace("\\", "-").replace("#", "-n")
    text = re.sub(r"\s+", "_", text.strip())
    text = re.sub(r"[^A-Za-z0-9._-]", "", text)
    return text.strip("-_.") or "work"


def work_id_for(source: str, *, root: Path | None = None) -> str:
    """Identifier of a source string.

    ``"corpus:bach/bwv66.6.mxl"`` gives ``"bach-bwv66.6"``; a user file gives its path relative to
    ``root`` without extension, slugified.
    """
    if source.startswith("corpus:"):
        spec = source[len("corpus:") :]
        path, _, number = spec.partition("#")
        stem = re.sub(r"\.(mxl|musicxml|xml|krn|abc|mid|midi)$", "", path)
        return slugify(stem + (f"#{number}" if number else ""))
    path = Path(source)
    rel = path.relative_to(root) if root is not None else Path(path.name)
    return slugify(str(rel.with_suffix("")))


def category_of(source: str) -> str:
    """Category of a corpus source (``"chorale"``, ``"quartet"``, ``"vocal"``, ``"folk"``, ``"other"``)."""
    if not source.startswith("corpus:"):
        return "user"
    path = source[len("corpus:") :]
    if path.startswith("bach/bwv"):
        return "chorale"
    if re.match(r"(beethoven|mozart|haydn|schumann_robert)/opus|mozart/k\d", path):
        return "quartet"
    if path.startswith(("palestrina/", "monteverdi/", "josquin/", "trecento/", "luca/", "lusitano/")):
        return "vocal"
    if path.startswith(("essenFolksong/", "ryansMammoth/", "oneills1850/", "airdsAirs/", "miscFolk/")):
        return "folk"
    return "other"


def corpus_sources(category: str) -> list[str]:
    """All music21 corpus sources of one category, sorted.

    Parameters
    ----------
    category : {"chorale", "quartet", "vocal", "other"}
        ``"chorale"``: Bach chorales (``bach/bwv*.mxl``); ``"quartet"``: string quartet movements of
        Beethoven, Mozart, Haydn and Schumann (MusicXML preferred over kern when both exist);
        ``"vocal"``: Monteverdi madrigals, Palestrina mass sections, Josquin, trecento pieces;
        ``"other"``: single polyphonic pieces (Corelli, Handel, C. P. E. Bach, Schubert, ...).
    """
    from music21 import corpus

    paths = sorted(str(p).replace("\\", "/").split("/corpus/", 1)[-1] for p in corpus.getPaths())
    out = []
    for path in paths:
        src = f"corpus:{path}"
        if category_of(src) != category or path.endswith((".rntxt", "_old.mxl")):
            continue
        if category == "chorale" and not path.endswith(".mxl"):
            continue
        if category == "quartet" and path.endswith(".krn") and path[:-4] + ".mxl" in paths:
            continue
        out.append(src)
    if category == "other":
        allowed = (
            "corelli/",
            "handel/",
            "cpebach/",
            "schubert/",
            "schumann_clara/",
            "beach/",
            "verdi/",
            "weber/",
            "chopin/",
        )
        out = [s for s in out if s[len("corpus:") :].startswith(allowed)]
    return out


def user_sources(folder: str | os.PathLike) -> list[str]:
    """All score files under ``folder`` (recursively), as absolute path strings inside it, sorted.

    Symbolic links are kept as they are (not resolved), so that a folder of links to scores elsewhere
    gives work ids relative to the folder like a folder of copies.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of scores")
    root = root.resolve()
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SCORE_EXTENSIONS)


# --------------------------------------------------------------------------------------------------
# parsing


def _alarm_handler(signum, frame):  # pragma: no cover - only called by the signal
    raise ParseTimeout()


def parse_source(
    source: str,
    *,
    work_id: str,
    time_limit: float = 20.0,
    expand_repeats: bool = True,
) -> ScoreData | ParseFailure:
    """Parse one source into :class:`ScoreData`, with a time limit.

    Parameters
    ----------
    source : str
        ``"corpus:<path>[#number]"`` or a file path.
    work_id : str
        Identifier stored in the result.
    time_limit : float > 0
        CPU seconds allowed for parsing (enforced with ``SIGPROF`` when called in a main thread; CPU
        time keeps the outcome independent of the load of the machine).
    expand_repeats : bool
        Write out repeat signs (falls back to the notated order when the repeats are malformed).

    Returns
    -------
    ScoreData or ParseFailure
        Failures are returned (with a one-line reason), never raised.
    """
    use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGPROF")
    old = None
    if use_alarm:
        # CPU time (user + system) rather than wall-clock time: the same files time out on a busy machine
        old = signal.signal(signal.SIGPROF, _alarm_handler)
        signal.setitimer(signal.ITIMER_PROF, float(time_limit))
    start = time.perf_counter()
    try:
        return _parse(source, work_id=work_id, expand_repeats=expand_repeats)
    except ParseTimeout:
        return ParseFailure(source, f"parsing took more than {time_limit:g} s of CPU time")
    except Exception as exc:  # noqa: BLE001 - any parser error makes the file unusable
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return ParseFailure(source, f"{type(exc).__name__}: {msg}")
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, old)
        logger.debug("parsed %s in %.2f s", source, time.perf_counter() - start)


def _parse(source: str, *, work_id: str, expand_repeats: bool) -> ScoreData:
    suffix = Path(source.partition("#")[0]).suffix.lower()
    if not source.startswith("corpus:") and suffix in (".mid", ".midi"):
        return _parse_midi(source, work_id=work_id)
    return _parse_music21(source, work_id=work_id, expand_repeats=expand_repeats)


def _parse_music21(source: str, *, work_id: str, expand_repeats: bool) -> ScoreData:
    from music21 import bar, converter, corpus, expressions, meter, repeat, stream, tempo

    name = source
    if source.startswith("corpus:"):
        path, _, number = source[len("corpus:") :].partition("#")
        name = path
        obj = corpus.parse(path, number=int(number)) if number else corpus.parse(path)
    else:
        obj = converter.parse(source)
    if isinstance(obj, stream.Opus):
        if not obj.scores:
            raise InputError(f"{name}: empty collection")
        obj = obj.scores[0]
    if not isinstance(obj, stream.Score):
        score = stream.Score()
        score.insert(0, obj)
        obj = score
    score = obj
    expanded = False
    if expand_repeats:
        has_repeats = any(True for _ in score.recurse().getElementsByClass((bar.Repeat, repeat.RepeatMark)))
        if has_repeats:
            try:
                score = score.expandRepeats()
                expanded = True
            except Exception as exc:  # noqa: BLE001 - music21 raises several kinds for bad repeats
                logger.info("%s: repeats left as notated (%s)", name, str(exc).splitlines()[0][:80])
    if any(getattr(p, "atSoundingPitch", True) is False for p in score.parts):
        try:
            score.toSoundingPitch(inPlace=True)
        except Exception:  # noqa: BLE001 - keep written pitch if music21 cannot transpose
            logger.info("%s: could not convert to sounding pitch", name)
    score.stripTies(inPlace=True)

    parts = []
    for part in score.parts or [score]:
        notes = []
        flat = part.flatten()
        for el in flat.notes:
            if el.duration.isGrace or el.quarterLength <= 0:
                continue
            onset = float(flat.elementOffset(el))
            dur = float(el.quarterLength)
            ferm = any(isinstance(e, expressions.Fermata) for e in el.expressions)
            pitches = [p.midi for p in el.pitches] if el.isChord else [el.pitch.midi]
            for p in pitches:
                if 0 <= p <= 127:
                    notes.append((int(p), round(onset, 6), round(dur, 6), bool(ferm)))
        if notes:
            notes.sort(key=lambda n: (n[1], n[0]))
            parts.append(PartData(str(part.partName or ""), tuple(notes)))
    if not parts:
        raise InputError(f"{name}: no notes found")

    first_part = (score.parts or [score])[0]
    measure_starts = tuple(float(first_part.elementOffset(m)) for m in first_part.getElementsByClass("Measure"))
    ts = next(iter(score.recurse().getElementsByClass(meter.TimeSignature)), None)
    marks = list(score.recurse().getElementsByClass(tempo.TempoIndication))
    bpm = _tempo_from_marks(marks, ts)
    md = score.metadata
    title = (md.title or md.movementName or "") if md is not None else ""
    composer = (md.composer or "") if md is not None else ""
    duration = max(o + d for part in parts for (_, o, d, _) in part.notes)
    return ScoreData(
        work_id=work_id,
        source=source,
        title=str(title),
        composer=str(composer),
        category=category_of(source),
        parts=tuple(parts),
        tempo_bpm=bpm,
        time_signature=ts.ratioString if ts is not None else "",
        measure_starts=measure_starts or (0.0,),
        duration_q=float(duration),
        repeats_expanded=expanded,
    )


def _tempo_from_marks(marks: Sequence, ts) -> float:
    """Quarter-note bpm from music21 tempo indications, a tempo word, or the metre; in [40, 200]."""
    for mark in marks:
        try:
            qbpm = mark.getQuarterBPM() if hasattr(mark, "getQuarterBPM") else None
        except Exception:  # noqa: BLE001
            qbpm = None
        if qbpm:
            return float(min(max(qbpm, 40.0), 200.0))
    for mark in marks:
        text = str(getattr(mark, "text", "") or "").lower()
        for word, bpm in TEMPO_WORDS:
            if word in text:
                return bpm
    beat_q = 1.0
    if ts is not None:
        try:
            beat_q = float(ts.beatDuration.quarterLength)
        except Exception:  # noqa: BLE001
            beat_q = 1.0
    # a moderate beat: ~76 beats per minute, slower for long beats (renaissance tactus)
    beat_bpm = 76.0 if beat_q <= 1.5 else 64.0
    return float(min(max(beat_bpm * beat_q, 50.0), 160.0))


def _parse_midi(source: str, *, work_id: str) -> ScoreData:
    import pretty_midi

    try:
        pm = pretty_midi.PrettyMIDI(source)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{source}: not a readable MIDI file ({type(exc).__name__})") from exc
    res = float(pm.resolution)
    parts = []
    for inst in pm.instruments:
        if inst.is_drum or not inst.notes:
            continue
        notes = []
        for n in inst.notes:
            on = pm.time_to_tick(n.start) / res
            off = pm.time_to_tick(n.end) / res
            if off > on:
                notes.append((int(n.pitch), round(on, 4), round(off - on, 4), False))
        if notes:
            notes.sort(key=lambda n: (n[1], n[0]))
            parts.append(PartData(inst.name or pretty_midi.program_to_instrument_name(inst.program), tuple(notes)))
    if not parts:
        raise InputError(f"{source}: no notes found")
    _, tempi = pm.get_tempo_changes()
    bpm = float(min(max(tempi[0], 40.0), 200.0)) if len(tempi) else 100.0
    num, den = 4, 4
    if pm.time_signature_changes:
        num, den = pm.time_signature_changes[0].numerator, pm.time_signature_changes[0].denominator
    bar_q = num * 4.0 / den
    duration = max(o + d for part in parts for (_, o, d, _) in part.notes)
    n_bars = int(duration // bar_q) + 1
    return ScoreData(
        work_id=work_id,
        source=source,
        title=Path(source).stem,
        composer="",
        category="user",
        parts=tuple(parts),
        tempo_bpm=bpm,
        time_signature=f"{num}/{den}",
        measure_starts=tuple(i * bar_q for i in range(n_bars)),
        duration_q=float(duration),
    )


# --------------------------------------------------------------------------------------------------
# cache


def _cache_key(source: str, *, expand_repeats: bool) -> str:
    stamp = ""
    if not source.startswith("corpus:"):
        try:
            st = os.stat(source)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
    text = f"{CACHE_VERSION}|{source}|{stamp}|{expand_repeats}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def load_cached(cache_dir: Path, source: str, *, expand_repeats: bool = True) -> ScoreData | ParseFailure | None:
    """Return the cached parse result of ``source``, or None if there is none."""
    path = cache_dir / f"{_cache_key(source, expand_repeats=expand_repeats)}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if "failure" in data:
        return ParseFailure(data["source"], data["failure"])
    return ScoreData.from_json(data)


def store_cached(cache_dir: Path, result: ScoreData | ParseFailure, *, expand_repeats: bool = True) -> None:
    """Write a parse result to the cache atomically (failures are cached too)."""
    path = cache_dir / f"{_cache_key(result.source, expand_repeats=expand_repeats)}.json"
    data = {"source": result.source, "failure": result.reason} if isinstance(result, ParseFailure) else result.to_json()
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def _parse_job(args: tuple[str, str, float, bool]) -> ScoreData | ParseFailure:
    source, work_id, time_limit, expand = args
    return parse_source(source, work_id=work_id, time_limit=time_limit, expand_repeats=expand)


def parse_many(
    sources: Iterable[tuple[str, str]],
    *,
    cache_dir: Path | None = None,
    time_limit: float = 20.0,
    jobs: int = 1,
    expand_repeats: bool = True,
    pool=None,
) -> list[ScoreData | ParseFailure]:
    """Parse ``(source, work_id)`` pairs, using and filling a cache; results keep the input order.

    Parameters
    ----------
    sources : iterable of (str, str)
        Source strings with their work identifiers.
    cache_dir : Path, optional
        Folder of cached results (JSON), failures and timeouts included.
    time_limit : float > 0
        Seconds per file.
    jobs : int > 0
        Worker processes (ignored when ``pool`` is given).
    pool : object with ``map(fn, items) -> list``, optional
        Worker processes to reuse (a ``multiprocessing`` pool or the builder's workers).
    """
    items = list(sources)
    results: list[ScoreData | ParseFailure | None] = [None] * len(items)
    todo = []
    for i, (src, wid) in enumerate(items):
        cached = load_cached(cache_dir, src, expand_repeats=expand_repeats) if cache_dir else None
        if cached is not None:
            if isinstance(cached, ScoreData) and cached.work_id != wid:
                cached = ScoreData.from_json({**cached.to_json(), "work_id": wid})
            results[i] = cached
        else:
            todo.append(i)
    args = [(items[i][0], items[i][1], time_limit, expand_repeats) for i in todo]
    if args:
        if pool is not None:
            parsed = pool.map(_parse_job, args)
        elif jobs > 1 and len(args) > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(min(jobs, len(args))) as p:
                parsed = p.map(_parse_job, args, chunksize=1)
        else:
            parsed = [_parse_job(a) for a in args]
        for i, res in zip(todo, parsed, strict=True):
            results[i] = res
            if cache_dir is not None:
                store_cached(cache_dir, res, expand_repeats=expand_repeats)
    for res in results:
        if isinstance(res, ParseFailure):
            logger.warning("skipping %s: %s", res.source, res.reason)
    return results  # type: ignore[return-value]
