// mirsearch page: search, listen at the match, figures, interpretation switcher, indexing progress.
// Plain JavaScript; every value from the server is inserted with textContent (never as HTML).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const state = {
  recordings: new Map(), // id -> recording
  playing: null, // recording id in the player
  lastQuery: null, // {kind, id?}
  switcher: [], // recording ids
  maps: new Map(), // "a>b" -> {time_a, time_b}
  pendingMaps: new Map(), // "a>b" -> Promise
  alignJobs: new Map(), // "a>b" -> the server's alignment job while it runs
  lastSwitch: null, // {from, to, t_from, t_to}
  indexTimer: null,
  loop: null, // {recId, start, end}: the matched span played in a loop
  selected: null, // the match shown in the figure (keyboard: m plays it)
  synth: null, // AudioContext of the synthesised theme
};
window.mirsearch = state; // for debugging and the browser tests

// ---------------------------------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function mmss(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  const m = Math.floor(s / 60);
  const rest = s - 60 * m;
  return `${m}:${rest < 10 ? "0" : ""}${rest.toFixed(1)}`;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error(`server not reachable (${err.message})`);
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
  node.classList.toggle("ok", kind === "ok");
}

function once(target, event, errorEvent = "error") {
  return new Promise((resolve, reject) => {
    const ok = () => { cleanup(); resolve(); };
    const bad = () => { cleanup(); reject(new Error("the audio could not be loaded")); };
    const cleanup = () => {
      target.removeEventListener(event, ok);
      target.removeEventListener(errorEvent, bad);
    };
    target.addEventListener(event, ok);
    target.addEventListener(errorEvent, bad);
  });
}

/** Piecewise-linear interpolation, clamped at the ends (like numpy.interp). */
function interp(t, xs, ys) {
  if (!xs.length) return t;
  if (t <= xs[0]) return ys[0];
  const last = xs.length - 1;
  if (t >= xs[last]) return ys[last];
  let lo = 0;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= t) lo = mid; else hi = mid;
  }
  const f = (t - xs[lo]) / (xs[hi] - xs[lo]);
  return ys[lo] + f * (ys[hi] - ys[lo]);
}

function recName(id) {
  const rec = state.recordings.get(id);
  return rec ? rec.name : `recording ${id}`;
}

// ---------------------------------------------------------------------------------------- player

const player = () => $("#player");

async function play(recId, t, { autoplay = true } = {}) {
  const audio = player();
  if (state.playing !== recId || !audio.src) {
    state.playing = recId;
    audio.src = `/api/recordings/${recId}/audio`;
    updateNowPlaying();
    renderSwitcher();
    await once(audio, "loadedmetadata");
  }
  audio.currentTime = Math.max(0, Math.min(t, (audio.duration || t + 1) - 0.05));
  updateCursors();
  if (autoplay) {
    try {
      await audio.play();
    } catch (err) {
      setStatus($("#status"), `playback blocked: ${err.message}`, "error");
    }
  }
  updateNowPlaying();
  updateCursors();
}

function updateNowPlaying() {
  const box = $("#now-playing");
  box.textContent = "";
  if (state.playing == null) {
    box.textContent = "nothing playing";
    return;
  }
  box.classList.remove("muted");
  box.append(el("strong", { text: recName(state.playing) }));
  box.dataset.recordingId = String(state.playing);
}

function updateCursors() {
  const audio = player();
  const t = audio.currentTime || 0;
  // the search results' timelines only (the similar, identify and tag lists also hold ".result" rows)
  for (const row of $$("#result-list .result")) {
    const id = Number(row.dataset.recordingId);
    const cursor = $(".cursor", row);
    if (!cursor) continue;
    const dur = Number(row.dataset.duration);
    const on = id === state.playing && dur > 0;
    cursor.classList.toggle("on", on);
    if (on) cursor.style.left = `${(100 * t) / dur}%`;
  }
  for (const row of $$(".version")) {
    const id = Number(row.dataset.recordingId);
    const rec = state.recordings.get(id);
    const cursor = $(".cursor", row);
    const pos = $(".pos", row);
    let at = null;
    if (id === state.playing) at = t;
    else if (state.playing != null) {
      const map = state.maps.get(`${state.playing}>${id}`);
      if (map) at = interp(t, map.time_a, map.time_b);
    }
    cursor.classList.toggle("on", at != null && !!rec);
    cursor.classList.toggle("mapped", id !== state.playing);
    if (at != null && rec) cursor.style.left = `${(100 * at) / rec.duration}%`;
    pos.textContent = at != null ? mmss(at) : "";
  }
}

// ---------------------------------------------------------------------------------------- results

function timeline(recId, duration, spans) {
  const bar = el("div", { class: "timeline", title: "click to play from here", tabIndex: 0, role: "slider" });
  bar.setAttribute("aria-label", `${recName(recId)}: Enter plays the match, arrows move by 5 s`);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", String(Math.round(duration)));
  bar.addEventListener("keydown", (ev) => {
    const here = state.playing === recId ? player().currentTime : spans.length ? spans[0][0] : 0;
    let to = null;
    if (ev.key === "Enter" || ev.key === " ") to = spans.length ? spans[0][0] : 0;
    else if (ev.key === "ArrowRight") to = Math.min(duration, here + 5);
    else if (ev.key === "ArrowLeft") to = Math.max(0, here - 5);
    if (to == null) return;
    ev.preventDefault();
    ev.stopPropagation();
    bar.setAttribute("aria-valuenow", String(Math.round(to)));
    play(recId, to);
  });
  for (const [start, end] of spans) {
    const span = el("div", { class: "span" });
    span.style.left = `${(100 * start) / duration}%`;
    span.style.width = `${(100 * (end - start)) / duration}%`;
    bar.append(span);
  }
  bar.append(el("div", { class: "cursor" }));
  bar.addEventListener("click", (ev) => {
    const box = bar.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (ev.clientX - box.left) / box.width));
    play(recId, fraction * duration);
  });
  return bar;
}

function resultRow(m, i, confident) {
  const dur = m.duration || m.end;
  const meta = [`${m.start_mmss} – ${m.end_mmss}`, `cost ${m.cost.toFixed(3)}`];
  if (m.confidence != null) meta.push(`confidence ${(100 * m.confidence).toFixed(0)} %`);
  // the recording's key relative to the query, -6..+5 semitones (as in the command line's output)
  if (m.transposition) meta.push(`recording ${m.transposition > 0 ? "+" : ""}${m.transposition} st`);
  const row = el(
    "li",
    { class: confident ? "result" : "result rejected", "data-recording-id": String(m.recording_id), "data-start": String(m.start), "data-duration": String(dur) },
    el("div", { class: "rank", text: String(i + 1) }),
    el(
      "div",
      { class: "body" },
      el("div", { class: "title", text: m.name, title: m.recording }),
      el("div", { class: "meta", text: meta.join(" · ") }),
      timeline(m.recording_id, dur, [[m.start, m.end]]),
    ),
    el(
      "div",
      { class: "actions" },
      el("button", { class: "play-btn primary small", type: "button", text: "▶ Play", title: "play from the match start", onclick: () => play(m.recording_id, m.start) }),
      el("button", { class: "loop-btn small", type: "button", text: "⟲ Loop", title: "play the matched span over and over", "aria-pressed": "false", onclick: (ev) => toggleLoop(m, ev.currentTarget) }),
      el("button", { class: "fig-btn small", type: "button", text: "Chromagram", onclick: () => showFigure(m, row) }),
      el("button", { class: "add-switch-btn small", type: "button", text: "+ Switcher", title: "add to the interpretation switcher", onclick: () => addVersion(m.recording_id) }),
    ),
  );
  return row;
}

function renderResults(data) {
  const list = $("#result-list");
  list.textContent = "";
  const matches = data.matches || [];
  // no confident match: say so, and list the best candidates below the threshold, marked as such
  const rejected = matches.length ? [] : data.rejected || [];
  const empty = $("#results-empty");
  empty.classList.toggle("hidden", matches.length > 0);
  if (!matches.length) {
    empty.textContent = rejected.length ? "No confident match. The best candidates below the confidence threshold:" : "No matches.";
  }
  const q = data.query || {};
  const what = q.notes ? `theme ${q.notes}` : q.file || q.name || "";
  const settings = [q.features, q.cascade].filter(Boolean).join(", ");
  const info = [`${matches.length} matches`, `${data.seconds.toFixed(2)} s`, what, settings].filter(Boolean);
  $("#results-info").textContent = info.join(" · ");
  matches.forEach((m, i) => list.append(resultRow(m, i, true)));
  rejected.forEach((m, i) => list.append(resultRow(m, i, false)));
  const shown = matches.length ? matches : rejected;
  if (shown.length) showFigure(shown[0], $(".result", list));
  else $("#figure-card").classList.add("hidden");
  updateCursors();
}

function showFigure(match, row) {
  for (const r of $$("#result-list .result")) r.classList.toggle("selected", r === row);
  const card = $("#figure-card");
  card.classList.remove("hidden");
  // zoomed to the match with context on both sides
  state.selected = match;
  const context = Math.max(20, 3 * (match.end - match.start));
  const span = { start: match.start, end: match.end, context: context.toFixed(1) };
  const params = new URLSearchParams(span);
  const q = state.lastQuery || {};
  if (q.notes) {
    // the query's notes drawn over the match, in the recording's key
    params.set("notes", q.notes);
    params.set("transposition", String(match.transposition || 0));
  }
  $("#chroma-fig").src = `/api/recordings/${match.recording_id}/chromagram.png?${params}`;
  $("#figure-caption").textContent = `${match.name}, match ${match.start_mmss} – ${match.end_mmss}`;
  const curveBox = $("#curve-box");
  if (state.lastQuery && state.lastQuery.kind === "audio" && state.lastQuery.id) {
    curveBox.classList.remove("hidden");
    // the same time span as the chromagram above, so that the two line up
    const curve = new URLSearchParams({ recording_id: match.recording_id, ...span });
    $("#curve-fig").src = `/api/queries/${encodeURIComponent(state.lastQuery.id)}/curve.png?${curve}`;
  } else {
    curveBox.classList.add("hidden");
  }
}

function searchButtons(disabled) {
  for (const b of $$("#query-card button[type=submit]")) b.disabled = disabled;
}

async function runSearch(path, options, label) {
  const status = $("#status");
  setStatus(status, `${label}…`);
  searchButtons(true);
  try {
    const data = await api(path, options);
    state.lastQuery = data.query;
    state.loop = null;
    renderResults(data);
    $("#query-play").classList.toggle("hidden", !(data.query.notes || state.queryFile));
    // what the engine warns about (too few notes, plain chroma's weaker confidence) is shown, not dropped
    setStatus(status, (data.warnings || []).join(" "));
  } catch (err) {
    setStatus(status, err.message, "error");
  } finally {
    searchButtons(false);
  }
}

function topValue() {
  return Number($("#opt-top").value);
}

function setupSearch() {
  for (const tab of $$(".tab")) {
    tab.addEventListener("click", () => {
      for (const t of $$(".tab")) {
        t.classList.toggle("active", t === tab);
        t.setAttribute("aria-selected", String(t === tab));
      }
      for (const panel of $$(".tab-panel")) panel.classList.toggle("hidden", panel.dataset.panel !== tab.dataset.tab);
    });
  }
  $("#notes-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = {
      notes: $("#theme-input").value.trim(),
      top: topValue(),
      transpose: $("#opt-transpose").checked,
    };
    // features and cascade are left to the server: "auto", the best the collection has (as on the command line)
    state.queryFile = null;
    shareSearch(body);
    runSearch("/api/search/theme", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }, "searching");
  });
  $("#score-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = new FormData();
    state.queryFile = null;
    form.append("file", $("#score-file").files[0]);
    form.append("top", String(topValue()));
    form.append("transpose", String($("#opt-transpose").checked));
    const part = $("#score-part").value.trim();
    if (part) form.append("part", part);
    runSearch("/api/search/theme-file", { method: "POST", body: form }, "reading the score and searching");
  });
  $("#audio-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const mode = ev.submitter ? ev.submitter.dataset.mode : "passages";
    const form = new FormData();
    state.queryFile = $("#audio-file").files[0];
    form.append("file", $("#audio-file").files[0]);
    form.append("top", String(topValue()));
    if (mode !== "versions") form.append("transpose", String($("#opt-transpose").checked));
    const path = mode === "versions" ? "/api/versions" : "/api/search/audio";
    runSearch(path, { method: "POST", body: form }, mode === "versions" ? "finding versions" : "matching the excerpt");
  });
}

// ---------------------------------------------------------------------------------------- loop, query, sharing, keys

function toggleLoop(match, button) {
  const on = !(state.loop && state.loop.recId === match.recording_id && state.loop.start === match.start);
  for (const b of $$(".loop-btn")) b.setAttribute("aria-pressed", "false");
  state.loop = on ? { recId: match.recording_id, start: match.start, end: match.end } : null;
  button.setAttribute("aria-pressed", String(on));
  if (on) play(match.recording_id, match.start);
}

function keepLoop() {
  const loop = state.loop;
  const audio = player();
  if (loop && state.playing === loop.recId && (audio.currentTime >= loop.end || audio.currentTime < loop.start - 1)) {
    audio.currentTime = loop.start;
  }
}

const NOTE_STEPS = { C: 0, D: 2, E: 4, F: 5, G: 7, A: 9, B: 11 };

/** The notes of the server's canonical note string ("C5/4 D#5/8. R/4"): [{pitch|null, quarters}]. */
function parseNotes(text) {
  const out = [];
  for (const token of text.trim().split(/\s+/)) {
    const m = /^([A-GR])([#b]?)(-?\d*)\/(\d+)(\.*)$/.exec(token);
    if (!m) continue;
    const base = 4 / Number(m[4]);
    const quarters = base * [1, 1.5, 1.75][m[5].length] ;
    if (m[1] === "R") out.push({ pitch: null, quarters });
    else out.push({ pitch: 12 * (Number(m[3] || 4) + 1) + NOTE_STEPS[m[1]] + (m[2] === "#" ? 1 : m[2] === "b" ? -1 : 0), quarters });
  }
  return out;
}

/** Play the query: a theme synthesised in the browser, or the uploaded excerpt itself. */
async function playQuery() {
  const q = state.lastQuery || {};
  player().pause();
  if (!q.notes && state.queryFile) {
    state.playing = null;
    player().src = URL.createObjectURL(state.queryFile);
    updateNowPlaying();
    await player().play();
    return;
  }
  const notes = parseNotes(q.notes || "");
  if (!notes.length) return;
  state.synth = state.synth || new AudioContext();
  const ctx = state.synth;
  const beat = 60 / (q.tempo || 100);
  let t = ctx.currentTime + 0.05;
  for (const n of notes) {
    const length = n.quarters * beat;
    if (n.pitch != null) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "triangle";
      osc.frequency.value = 440 * 2 ** ((n.pitch - 69) / 12);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + Math.max(0.05, length * 0.95));
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + length);
    }
    t += length;
  }
  state.synthUntil = t;
}

/** Put a note search in the address bar: the URL reproduces it (#notes=...&top=...&transpose=...). */
function shareSearch(body) {
  const params = new URLSearchParams({ notes: body.notes, top: String(body.top), transpose: String(body.transpose) });
  history.replaceState(null, "", `#${params}`);
}

function searchFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.get("notes")) return;
  $("#theme-input").value = params.get("notes");
  if (params.get("top")) {
    const top = params.get("top");
    if (![...$("#opt-top").options].some((o) => o.value === top)) $("#opt-top").append(el("option", { text: top }));
    $("#opt-top").value = top;
  }
  $("#opt-transpose").checked = params.get("transpose") !== "false";
  $("#notes-form").requestSubmit();
}

function setupKeys() {
  document.addEventListener("keydown", (ev) => {
    const target = ev.target;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || target.closest("input, textarea, select, button, [role=slider]")) return;
    const audio = player();
    if (ev.key === " ") {
      ev.preventDefault();
      if (audio.src) audio.paused ? audio.play() : audio.pause();
    } else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      ev.preventDefault();
      audio.currentTime = Math.max(0, audio.currentTime + (ev.key === "ArrowRight" ? 5 : -5));
    } else if (ev.key === "q") {
      playQuery();
    } else if (ev.key === "m" && state.selected) {
      play(state.selected.recording_id, state.selected.start);
    }
  });
}

// ---------------------------------------------------------------------------------------- switcher

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The time map of a pair: at once when cached, else the server's alignment job is polled (its progress shown). */
async function alignPair(a, b) {
  const url = `/api/align?a=${a}&b=${b}`;
  let data = await api(`${url}&wait=2`);
  try {
    while (data && data.job) {
      // 202: an alignment job runs on the server
      state.alignJobs.set(`${a}>${b}`, data);
      const pct = Math.round(100 * data.fraction);
      setStatus($("#switch-status"), `aligning ${recName(a)} with ${recName(b)}… ${data.state} ${pct} % (${Math.round(data.elapsed)} s, about ${Math.round(data.estimate_seconds)} s)`);
      await sleep(1000);
      const job = await api(data.status_url);
      if (job.state === "failed") throw new Error(job.error || "the alignment failed");
      data = job.state === "done" ? await api(url) : job;
    }
  } finally {
    state.alignJobs.delete(`${a}>${b}`);
  }
  return data;
}

function getMap(a, b) {
  const key = `${a}>${b}`;
  if (state.maps.has(key)) return Promise.resolve(state.maps.get(key));
  if (state.pendingMaps.has(key)) return state.pendingMaps.get(key);
  const promise = alignPair(a, b)
    .then((data) => {
      state.maps.set(key, { time_a: data.time_a, time_b: data.time_b });
      state.maps.set(`${b}>${a}`, { time_a: data.time_b, time_b: data.time_a });
      return state.maps.get(key);
    })
    .finally(() => state.pendingMaps.delete(key));
  state.pendingMaps.set(key, promise);
  return promise;
}

async function prefetchMaps(newId) {
  const status = $("#switch-status");
  for (const other of state.switcher) {
    if (other === newId) continue;
    if (state.maps.has(`${other}>${newId}`)) continue;
    setStatus(status, `aligning ${recName(newId)} with ${recName(other)}…`);
    try {
      await getMap(other, newId);
      setStatus(status, "versions aligned", "ok");
    } catch (err) {
      setStatus(status, err.message, "error");
    }
  }
  updateCursors();
}

function addVersion(id) {
  id = Number(id);
  if (!state.recordings.has(id) || state.switcher.includes(id)) return;
  state.switcher.push(id);
  renderSwitcher();
  prefetchMaps(id);
}

function removeVersion(id) {
  state.switcher = state.switcher.filter((x) => x !== id);
  renderSwitcher();
}

async function switchTo(target) {
  const status = $("#switch-status");
  const from = state.playing;
  if (from === target) return;
  if (from == null || !state.switcher.includes(from)) {
    // nothing playing, or a recording that is not one of these versions: start at the beginning
    setStatus(status, `playing ${recName(target)} from the start`);
    await play(target, 0);
    return;
  }
  let map;
  try {
    if (!state.maps.has(`${from}>${target}`)) setStatus(status, `aligning ${recName(from)} with ${recName(target)}…`);
    map = await getMap(from, target);
  } catch (err) {
    setStatus(status, err.message, "error");
    return;
  }
  const audio = player();
  const wasPlaying = !audio.paused;
  const tFrom = audio.currentTime; // read after the (possibly slow) alignment: the current position
  const tTo = interp(tFrom, map.time_a, map.time_b);
  state.lastSwitch = { from, to: target, t_from: tFrom, t_to: tTo };
  setStatus(status, `${mmss(tFrom)} in ${recName(from)} → ${mmss(tTo)} in ${recName(target)}`, "ok");
  await play(target, tTo, { autoplay: wasPlaying });
}

function renderSwitcher() {
  const list = $("#switch-list");
  list.textContent = "";
  for (const id of state.switcher) {
    const rec = state.recordings.get(id);
    if (!rec) continue;
    const row = el(
      "li",
      { class: `version${id === state.playing ? " current" : ""}`, "data-recording-id": String(id) },
      el(
        "div",
        { class: "head" },
        el("span", { class: "name", text: rec.name, title: rec.path }),
        el("span", { class: "pos" }),
        el("button", { class: "switch-btn small primary", type: "button", text: "Switch", "data-recording-id": String(id), onclick: () => switchTo(id) }),
        el("button", { class: "small", type: "button", text: "×", title: "remove", onclick: () => removeVersion(id) }),
      ),
      timeline(id, rec.duration, []),
    );
    list.append(row);
  }
  updateCursors();
}

function setupSwitcher() {
  $("#switch-add").addEventListener("click", () => addVersion($("#switch-select").value));
}

// ---------------------------------------------------------------------------------------- collection

async function loadRecordings() {
  const data = await api("/api/recordings");
  state.recordings.clear();
  const list = $("#recording-list");
  const select = $("#switch-select");
  list.textContent = "";
  select.textContent = "";
  for (const rec of data.recordings) {
    state.recordings.set(rec.id, rec);
    list.append(
      el(
        "li",
        {},
        el("span", { text: rec.name, title: rec.path }),
        el("span", { class: "muted", text: rec.duration_mmss }),
        el("button", { class: "small", type: "button", text: "▶", title: "play", onclick: () => play(rec.id, 0) }),
        el("button", { class: "small", type: "button", text: "+", title: "add to the switcher", onclick: () => addVersion(rec.id) }),
      ),
    );
    select.append(el("option", { value: String(rec.id), text: rec.name }));
  }
  renderSwitcher();
}

async function loadStats() {
  try {
    const s = await api("/api/stats");
    const folder = s.path.split("/").filter(Boolean).pop() || s.path;
    $("#collection-summary").textContent = `${folder} · ${s.recordings} recordings · ${(s.hours * 60).toFixed(1)} min`;
    const dl = $("#stats");
    dl.textContent = "";
    const rows = [
      ["recordings", String(s.recordings)],
      ["audio", `${(s.hours * 60).toFixed(1)} min`],
      ["features", Object.keys(s.features).join(", ") + ` at ${s.feature_rate} Hz`],
      ["on disk", `${s.size_mb} MB`],
      ["failed files", String(s.failures.length)],
    ];
    for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { text: v }));
    $("#audio-limits").textContent =
      `Excerpts up to ${s.server.max_query_seconds} s, whole recordings (versions) up to ` +
      `${Math.round(s.server.max_recording_seconds / 60)} min; files up to ${s.server.max_upload_mb} MB.`;
  } catch (err) {
    $("#collection-summary").textContent = `collection not available: ${err.message}`;
  }
}

function showJob(job) {
  const status = $("#index-status");
  const bar = $("#index-bar");
  if (!job) {
    setStatus(status, "");
    bar.style.width = "0";
    return false;
  }
  bar.style.width = `${Math.round(100 * job.fraction)}%`;
  const c = job.counts;
  const counts = `${c.added} added, ${c.updated} updated, ${c.unchanged} unchanged, ${c.failed} failed`;
  if (job.state === "running" || job.state === "starting") {
    setStatus(status, `indexing ${job.done}/${job.total}${job.current ? " · " + job.current : ""} · ${counts}`);
    return true;
  }
  if (job.state === "failed") setStatus(status, `indexing failed: ${job.error}`, "error");
  else setStatus(status, `done in ${job.elapsed.toFixed(1)} s: ${counts}`, c.failed ? "error" : "ok");
  return false;
}

async function pollIndex() {
  clearTimeout(state.indexTimer);
  try {
    const data = await api("/api/index");
    const running = showJob(data.job);
    $("#index-btn").disabled = running || !data.sources.length;
    if (running) {
      state.indexTimer = setTimeout(pollIndex, 1000);
    } else if (data.job && data.job.state !== "failed" && state.lastJobShown !== data.job.id) {
      state.lastJobShown = data.job.id;
      await Promise.all([loadStats(), loadRecordings()]);
    }
  } catch (err) {
    setStatus($("#index-status"), err.message, "error");
  }
}

async function setupIndexing() {
  const data = await api("/api/index");
  const box = $("#index-sources");
  box.textContent = data.sources.length
    ? `Folders: ${data.sources.join(", ")}`
    : "Indexing from the page is off (start the server with --index-source DIR).";
  $("#index-btn").disabled = !data.sources.length;
  if (data.job) state.lastJobShown = data.job.id;
  showJob(data.job);
  if (data.job && (data.job.state === "running" || data.job.state === "starting")) pollIndex();
  $("#index-btn").addEventListener("click", async () => {
    $("#index-btn").disabled = true;
    try {
      await api("/api/index", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    } catch (err) {
      setStatus($("#index-status"), err.message, "error");
    }
    pollIndex();
  });
}

// ---------------------------------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", async () => {
  setupSearch();
  setupSwitcher();
  setupKeys();
  $("#query-play").addEventListener("click", playQuery);
  const audio = player();
  audio.addEventListener("timeupdate", updateCursors);
  audio.addEventListener("timeupdate", keepLoop);
  audio.addEventListener("seeked", updateCursors);
  await Promise.all([loadStats(), loadRecordings().catch((err) => setStatus($("#status"), err.message, "error"))]);
  // the index button gets its handler (and is enabled) before the page says it is ready
  await setupIndexing().catch((err) => setStatus($("#index-status"), err.message, "error"));
  document.body.dataset.ready = "1";
  searchFromUrl();
});
