// mirsearch page: the speech / music segments of the recording in the player, as a coloured band under it.
// Reads GET /api/recordings/{id}/segments (stored probabilities when the collection has them). Click a band to
// play from there. Every value from the server is inserted with textContent (never as HTML).
"use strict";

(() => {
  const LABELS = ["speech", "music", "speech+music", "noise"];
  const cache = new Map(); // recording id -> Promise of the answer
  let shown = null; // recording id whose band is drawn

  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  };
  const fmt = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

  async function fetchSegments(id) {
    if (!cache.has(id)) {
      const p = fetch(`/api/recordings/${id}/segments`).then(async (r) => {
        const body = await r.json();
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      });
      cache.set(id, p);
      p.catch(() => cache.delete(id)); // a failed request may be retried later
    }
    return cache.get(id);
  }

  function draw(box, data) {
    box.textContent = "";
    const bar = node("div", "segbar");
    bar.setAttribute("role", "img");
    const spoken = data.segments.filter((s) => s.label.includes("speech")).reduce((a, s) => a + s.end - s.start, 0);
    const music = data.segments.filter((s) => s.label.includes("music")).reduce((a, s) => a + s.end - s.start, 0);
    bar.setAttribute("aria-label", `speech ${fmt(spoken)}, music ${fmt(music)} of ${fmt(data.duration)}`);
    for (const s of data.segments) {
      const part = node("div", `seg seg-${s.label.replace("+", "-")}`);
      part.style.left = `${(100 * s.start) / data.duration}%`;
      part.style.width = `${(100 * (s.end - s.start)) / data.duration}%`;
      part.title = `${s.label} ${fmt(s.start)}–${fmt(s.end)} (click to play)`;
      part.dataset.label = s.label;
      part.addEventListener("click", () => {
        const audio = document.querySelector("#player");
        audio.currentTime = s.start;
        audio.play().catch(() => {});
      });
      bar.append(part);
    }
    const cursor = node("div", "cursor on");
    bar.append(cursor);
    const legend = node("div", "seglegend small");
    for (const label of LABELS) {
      const key = node("span", `segkey seg-${label.replace("+", "-")}`);
      legend.append(key, node("span", "", ` ${label} `));
    }
    legend.append(node("span", "muted", data.stored ? "· stored" : "· computed"));
    box.append(bar, legend);
  }

  async function update() {
    const state = window.mirsearch;
    const box = document.querySelector("#segments");
    if (!state || !box) return;
    const id = state.playing;
    if (id == null || id === shown) return;
    shown = id;
    box.textContent = "speech / music segments…";
    box.classList.add("muted");
    try {
      const data = await fetchSegments(id);
      if (shown !== id) return; // another recording was chosen meanwhile
      box.classList.remove("muted");
      draw(box, data);
    } catch (err) {
      if (shown === id) box.textContent = `segments not available: ${err.message}`;
    }
  }

  function moveCursor() {
    const audio = document.querySelector("#player");
    const cursor = document.querySelector("#segments .cursor");
    if (!cursor || !audio.duration) return;
    cursor.style.left = `${(100 * audio.currentTime) / audio.duration}%`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const audio = document.querySelector("#player");
    if (!audio) return;
    audio.addEventListener("loadedmetadata", update);
    audio.addEventListener("timeupdate", moveCursor);
  });
})();
