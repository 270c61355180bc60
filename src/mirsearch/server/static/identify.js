// mirsearch page: "identify a clip". A card with a file input sends the clip to POST /api/identify and lists the
// recordings it was found in (offset, speed, score), each with a button that plays the recording from the clip's
// place; "not found" when the answer is empty. Every value from the server is inserted with textContent.
"use strict";

(() => {
  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  };
  const withAttrs = (el, attrs) => {
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  };

  function card() {
    const box = withAttrs(node("section", "card"), { id: "identify-card", "aria-labelledby": "identify-title" });
    const title = node("h2", null, "Identify a clip");
    title.id = "identify-title";
    const help = node("p", "small", "Which recording is this excerpt from, where, and at what speed? "
      + "(a collection indexed with --features ...,fingerprint)");
    const form = node("form");
    form.id = "identify-form";
    const file = node("input");
    file.type = "file";
    file.id = "identify-file";
    file.accept = "audio/*,.wav,.flac,.ogg,.opus,.mp3";
    file.setAttribute("aria-label", "audio clip to identify");
    const go = node("button", null, "Identify");
    go.type = "submit";
    form.append(file, go);
    const status = withAttrs(node("div", "status small"), { id: "identify-status", role: "status", "aria-live": "polite" });
    const list = withAttrs(node("ol", "results"), { id: "identify-list" });
    box.append(title, help, form, status, list);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (file.files.length) identify(file.files[0], status, list);
      else status.textContent = "choose an audio file first";
    });
    return box;
  }

  async function identify(clip, status, list) {
    status.textContent = `identifying ${clip.name}…`;
    list.textContent = "";
    const data = new FormData();
    data.append("file", clip);
    try {
      const r = await fetch("/api/identify", { method: "POST", body: data });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      status.textContent = body.matches.length
        ? `${clip.name} (${body.query.duration.toFixed(1)} s) found in ${body.seconds.toFixed(2)} s`
        : `${clip.name}: not found in the collection`;
      body.matches.forEach((m, i) => {
        const li = node("li", "result");
        li.dataset.recordingId = String(m.recording_id);
        li.dataset.offset = String(m.offset);
        const bodyDiv = node("div", "body");
        const meta = `from ${m.offset.toFixed(1)} s · speed ${m.speed.toFixed(3)} · score ${m.score.toFixed(1)}`;
        bodyDiv.append(node("div", "title", m.name), node("div", "meta", meta));
        const actions = node("div", "actions");
        const playBtn = node("button", "small", "▶ Play from there");
        playBtn.type = "button";
        playBtn.addEventListener("click", () => window.play && window.play(m.recording_id, m.offset));
        actions.append(playBtn);
        li.append(node("div", "rank", String(i + 1)), bodyDiv, actions);
        list.append(li);
      });
    } catch (err) {
      status.textContent = `identify failed: ${err.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = card();
    const after = document.querySelector("#results-card");
    if (after) after.after(box);
    else document.body.append(box);
  });
})();
