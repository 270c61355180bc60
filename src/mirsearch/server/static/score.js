// mirsearch page: scores. A card lists the collection's scores (GET /api/scores), searches a theme in them
// (POST /api/scores/search) and shows a score engraved by verovio (GET /api/scores/{id}/view) with the found
// notes highlighted and a cursor that follows its synthesised audio (GET /api/scores/{id}/audio.wav): the notes
// sounding at the player's currentTime (onset <= t < offset) are marked and scrolled into view; a click on a note
// plays from there. Server values are inserted with textContent; the SVG pages are parsed as XML and stripped
// of scripts, event handlers and links before they are shown.
"use strict";

(() => {
  const view = { score: null, notes: [], byId: new Map(), now: [], hits: [], frame: 0 };
  window.mirsearchScore = view; // for the browser tests

  const make = (tag, attrs = {}, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v);
    }
    n.append(...kids);
    return n;
  };
  const $ = (sel) => document.querySelector(sel);

  async function getJson(url, options) {
    const r = await fetch(url, options);
    const type = r.headers.get("content-type") || "";
    const body = type.includes("application/json") ? await r.json() : {};
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function status(text, kind = "") {
    const s = $("#score-status");
    s.textContent = text;
    s.classList.toggle("error", kind === "error");
  }

  // an SVG page from the server, without anything active in it
  function cleanSvg(text) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.nodeName !== "svg") throw new Error("the score's page is not SVG");
    for (const bad of svg.querySelectorAll("script, foreignObject, a, iframe, style")) bad.remove();
    for (const node of svg.querySelectorAll("*")) {
      for (const attr of Array.from(node.attributes)) {
        const value = attr.value.trim().toLowerCase();
        if (attr.name.startsWith("on") || (attr.name.endsWith("href") && !value.startsWith("#"))) {
          node.removeAttribute(attr.name);
        }
      }
    }
    return document.importNode(svg, true);
  }

  function mark(ids, cls) {
    for (const id of ids) {
      const g = view.byId.get(id);
      if (g) g.classList.add(cls);
    }
  }

  function unmark(ids, cls) {
    for (const id of ids) {
      const g = view.byId.get(id);
      if (g) g.classList.remove(cls);
    }
  }

  // notes sounding at time t (s): onset <= t < offset
  function soundingAt(t) {
    const out = [];
    for (const n of view.notes) {
      if (n.onset > t) break; // sorted by onset
      if (t < n.offset) out.push(n.id);
    }
    return out;
  }

  function updateCursor() {
    const audio = $("#score-player");
    if (!audio || !view.notes.length) return;
    const ids = soundingAt(audio.currentTime);
    if (ids.join() === view.now.join()) return;
    unmark(view.now, "score-now");
    mark(ids, "score-now");
    view.now = ids;
    const first = ids.length ? view.byId.get(ids[0]) : null;
    if (first && !audio.paused) first.scrollIntoView({ block: "nearest", inline: "nearest" });
    $("#score-view").dataset.cursor = ids.join(" ");
  }

  function follow() {
    updateCursor();
    const audio = $("#score-player");
    view.frame = audio && !audio.paused ? requestAnimationFrame(follow) : 0;
  }

  // the notes of a match (its [quarter, pitch] pairs) among the engraved notes
  function highlight(match) {
    unmark(view.hits, "score-hit");
    view.hits = [];
    if (!match || !match.notes_at) return;
    const want = new Set(match.notes_at.map(([q, p]) => `${Math.round(q * 64)}:${p}`));
    view.hits = view.notes.filter((n) => want.has(`${Math.round(n.quarter * 64)}:${n.pitch}`)).map((n) => n.id);
    mark(view.hits, "score-hit");
    const first = view.byId.get(view.hits[0]);
    if (first) first.scrollIntoView({ block: "center" });
  }

  async function show(scoreId, match = null) {
    const box = $("#score-view");
    const recording = $("#score-source").value;
    status(recording ? "engraving the score and aligning it to the recording…" : "engraving the score…");
    box.dataset.ready = "0";
    try {
      const data = await getJson(`/api/scores/${scoreId}/view${recording ? `?recording=${recording}` : ""}`);
      box.textContent = "";
      view.score = scoreId;
      view.notes = data.notes;
      view.now = [];
      for (const page of data.pages) box.append(make("div", { class: "score-page" }, cleanSvg(page)));
      view.byId = new Map();
      for (const n of data.notes) {
        const g = box.querySelector(`[id="${CSS.escape(n.id)}"]`);
        if (g) {
          view.byId.set(n.id, g);
          g.classList.add("score-note");
          g.addEventListener("click", () => playFrom(n.onset));
        }
      }
      const audio = $("#score-player");
      audio.src = recording ? `/api/recordings/${recording}/audio` : `/api/scores/${scoreId}/audio.wav`;
      view.recording = recording ? Number(recording) : null;
      view.match = match;
      audio.classList.remove("hidden");
      highlight(match);
      const more = data.page_count > data.pages.length ? ` (first ${data.pages.length} of ${data.page_count} pages)` : "";
      status(`${data.name}: ${data.notes.length} notes${more}; play to follow the score, click a note to play from it`);
      box.dataset.score = String(scoreId);
      box.dataset.ready = "1";
    } catch (err) {
      status(`cannot show the score: ${err.message}`, "error");
    }
  }

  // piecewise-linear map through the notes' (time, quarter) points, sorted by the first coordinate
  function through(points, x) {
    if (!points.length) return 0;
    let i = 0;
    while (i + 1 < points.length && points[i + 1][0] <= x) i++;
    const [x0, y0] = points[i];
    const next = points[i + 1];
    if (!next || next[0] === x0) return y0;
    return y0 + ((Math.min(x, next[0]) - x0) * (next[1] - y0)) / (next[0] - x0);
  }

  const quarterAt = (t) => through(view.notes.map((n) => [n.onset, n.quarter]), t);
  const timeAt = (q) => through(view.notes.map((n) => [n.quarter, n.onset]).sort((a, b) => a[0] - b[0]), q);

  // another audio for the shown score (the synthesis, or another recording): playback goes on at the same place
  // of the score (the interpretation switcher, with the score as the common reference)
  async function switchSource() {
    if (view.score == null) return;
    const audio = $("#score-player");
    const playing = !audio.paused;
    const from = audio.currentTime;
    const q = quarterAt(from);
    audio.pause();
    await show(view.score, view.match);
    if ($("#score-view").dataset.ready !== "1") return;
    if (audio.readyState < 1) await new Promise((ok) => audio.addEventListener("loadedmetadata", ok, { once: true }));
    const to = timeAt(q);
    audio.currentTime = to;
    view.switched = { from, quarter: q, to };
    if (playing) audio.play().catch(() => {});
  }

  function playFrom(t) {
    const audio = $("#score-player");
    audio.currentTime = t;
    audio.play().catch(() => {});
  }

  function resultRow(m) {
    const where = `m. ${m.measure} · ${m.part} · ${m.start_quarter.toFixed(2)} q · ${m.transposition >= 0 ? "+" : ""}${m.transposition}`;
    return make(
      "li",
      {},
      make("span", { text: `${m.recording} ` }),
      make("span", { class: "muted", text: `${where} · score ${m.score.toFixed(2)}` }),
      make("button", { class: "small", type: "button", text: "show", onclick: () => show(m.recording_id, m) }),
    );
  }

  async function search(ev) {
    ev.preventDefault();
    const notes = $("#score-theme").value.trim();
    if (!notes) return;
    status("searching the scores…");
    try {
      const body = JSON.stringify({ notes, top: 50 });
      const data = await getJson("/api/scores/search", { method: "POST", headers: { "Content-Type": "application/json" }, body });
      const list = $("#score-results");
      list.textContent = "";
      for (const m of data.matches) list.append(resultRow(m));
      status(`${data.matches.length} occurrences in ${data.seconds.toFixed(2)} s`);
      view.results = data.matches;
    } catch (err) {
      status(err.message, "error");
    }
  }

  function card() {
    const select = make("select", { id: "score-select", "aria-label": "score" });
    const source = make("select", { id: "score-source", "aria-label": "audio that the cursor follows" },
      make("option", { value: "", text: "synthesised from the score" }));
    source.addEventListener("change", switchSource);
    const audio = make("audio", { id: "score-player", controls: "", preload: "auto", class: "hidden" });
    for (const type of ["play", "seeked", "timeupdate"]) audio.addEventListener(type, () => {
      if (!view.frame) follow();
    });
    const form = make(
      "form",
      { id: "score-form-search", class: "row", autocomplete: "off" },
      make("input", { id: "score-theme", type: "text", placeholder: "theme, e.g. C D E F G", maxlength: "2000", "aria-label": "theme" }),
      make("button", { type: "submit", text: "Find in scores" }),
    );
    form.addEventListener("submit", search);
    return make(
      "section",
      { class: "card", id: "scores-card", "aria-labelledby": "scores-title" },
      make("h2", { id: "scores-title", text: "Scores" }),
      make("div", { class: "row" }, select, make("button", { type: "button", text: "Show", onclick: () => select.value && show(Number(select.value)) })),
      make("label", { class: "small" }, "Audio: ", source),
      form,
      make("ol", { id: "score-results", class: "results" }),
      make("div", { id: "score-status", class: "status small", role: "status", "aria-live": "polite" }),
      audio,
      make("div", { id: "score-view", class: "score-view" }),
    );
  }

  async function start() {
    const main = document.querySelector(".col-main");
    if (!main || $("#scores-card")) return;
    main.append(card());
    try {
      const data = await getJson("/api/scores");
      const select = $("#score-select");
      for (const s of data.scores) select.append(make("option", { value: String(s.id), text: `${s.name} (${s.notes} notes)` }));
      if (!data.scores.length) status("no scores in this collection (index MusicXML, MEI, kern or MIDI files)");
      const recs = await getJson("/api/recordings");
      for (const r of recs.recordings) {
        $("#score-source").append(make("option", { value: String(r.id), text: `recording: ${r.name} (aligned)` }));
      }
      $("#scores-card").dataset.ready = "1";
    } catch (err) {
      status(`scores not available: ${err.message}`, "error");
    }
  }

  view.show = show;
  view.highlight = highlight;
  view.soundingAt = soundingAt;
  document.addEventListener("DOMContentLoaded", start);
})();
