// mirsearch page: "more like this". A button on every search result, every recording of the collection list and
// the recording in the player asks GET /api/recordings/{id}/similar and lists the nearest recordings in a card
// (play one, or ask for more like it); under the player a second button asks for recordings like the PASSAGE
// seconds around the playing position (?start=&end=). Every value from the server is inserted with textContent.
"use strict";

(() => {
  const TOP = 10;
  const PASSAGE = 20; // seconds of the recording around the playing position that "this passage" asks about

  const node = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  };
  const nameOf = (path) => String(path).split("/").pop();

  function card() {
    let box = document.querySelector("#similar-card");
    if (box) return box;
    box = node("section", "card", null);
    box.id = "similar-card";
    box.setAttribute("aria-labelledby", "similar-title");
    const title = node("h2", null, "More like this");
    title.id = "similar-title";
    const status = node("div", "status small");
    status.id = "similar-status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    const list = node("ol", "results");
    list.id = "similar-list";
    box.append(title, status, list);
    const after = document.querySelector("#results-card");
    if (after) after.after(box);
    else document.body.append(box);
    return box;
  }

  function button(id) {
    const b = node("button", "similar-btn small", "More like this");
    b.type = "button";
    b.title = "recordings that sound like this one";
    b.addEventListener("click", () => show(id));
    return b;
  }

  function passageButton(id) {
    const b = node("button", "similar-passage-btn small", "More like this passage");
    b.type = "button";
    b.title = `recordings that sound like the ${PASSAGE} s around the playing position`;
    b.addEventListener("click", () => {
      const audio = document.querySelector("#player");
      const start = Math.max(0, Math.floor((audio && audio.currentTime) || 0) - PASSAGE / 2);
      show(id, [start, start + PASSAGE]);
    });
    return b;
  }

  const clock = (t) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, "0")}`;

  async function show(id, passage) {
    const box = card();
    const status = box.querySelector("#similar-status");
    const list = box.querySelector("#similar-list");
    const rec = window.mirsearch && window.mirsearch.recordings.get(id);
    const what = `${rec ? rec.name : `#${id}`}${passage ? ` ${clock(passage[0])}-${clock(passage[1])}` : ""}`;
    status.textContent = `searching recordings like ${what}…`;
    list.textContent = "";
    const range = passage ? `&start=${passage[0]}&end=${passage[1]}` : "";
    try {
      const r = await fetch(`/api/recordings/${id}/similar?top=${TOP}${range}`);
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      status.textContent = body.matches.length
        ? `nearest to ${what} (${body.stats.recordings} recordings compared)`
        : "no other recordings with timbre vectors (index with --features ...,timbre)";
      body.matches.forEach((m, i) => {
        const li = node("li", "result");
        li.dataset.recordingId = String(m.recording_id);
        const bodyDiv = node("div", "body");
        const views = Object.entries(m.views || {}).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(" · ");
        const meta = node("div", "meta", `distance ${m.distance.toFixed(3)}${views ? ` (${views})` : ""}`);
        meta.title = "distance per view from the recording: 1 is a typical pair of the collection";
        bodyDiv.append(node("div", "title", nameOf(m.recording)), meta);
        const actions = node("div", "actions");
        const playBtn = node("button", "small", "▶ Play");
        playBtn.type = "button";
        playBtn.addEventListener("click", () => window.play && window.play(m.recording_id, 0));
        actions.append(playBtn, button(m.recording_id));
        li.append(node("div", "rank", String(i + 1)), bodyDiv, actions);
        list.append(li);
      });
      box.scrollIntoView({ behavior: "smooth", block: "nearest" });
    } catch (err) {
      status.textContent = `more like this is not available: ${err.message}`;
    }
  }

  function decorate() {
    for (const li of document.querySelectorAll("#result-list li.result[data-recording-id]")) {
      const actions = li.querySelector(".actions");
      if (actions && !actions.querySelector(".similar-btn")) actions.append(button(Number(li.dataset.recordingId)));
    }
    const ids = window.mirsearch ? [...window.mirsearch.recordings.keys()] : [];
    document.querySelectorAll("#recording-list > li").forEach((li, i) => {
      if (ids[i] != null && !li.querySelector(".similar-btn")) li.append(button(ids[i]));
    });
    const player = document.querySelector("#player-card");
    const playing = window.mirsearch && window.mirsearch.playing;
    if (player && playing != null) {
      let holder = player.querySelector("#similar-playing");
      if (!holder) {
        holder = node("div", "small");
        holder.id = "similar-playing";
        player.append(holder);
      }
      if (holder.dataset.id !== String(playing)) {
        holder.dataset.id = String(playing);
        holder.textContent = "";
        holder.append(button(playing), passageButton(playing));
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const observer = new MutationObserver(decorate);
    for (const sel of ["#result-list", "#recording-list", "#now-playing"]) {
      const target = document.querySelector(sel);
      if (target) observer.observe(target, { childList: true, subtree: true, characterData: true });
    }
    decorate();
  });
})();
