// mirsearch page: tags. The recording in the player shows its most probable tags (GET /api/recordings/{id}/tags,
// from the stored "tags" features), and a card filters the collection by a tag (GET /api/tags for the vocabulary,
// GET /api/tags/{tag}/recordings for the ranking; play a recording from the list). Every value from the server is
// inserted with textContent (never as HTML).
"use strict";

(() => {
  const SHOWN = 6; // tags shown under the player
  const TOP = 20; // recordings listed for a tag
  let shown = null;

  // an element with attributes ("text" sets its text) and children
  const make = (tag, attrs, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") n.textContent = v;
      else n.setAttribute(k, v);
    }
    n.append(...kids);
    return n;
  };

  const node = (tag, cls, text) => make(tag, { ...(cls ? { class: cls } : {}), ...(text != null ? { text } : {}) });
  const nameOf = (path) => String(path).split("/").pop();

  async function getJson(url) {
    const r = await fetch(url);
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  async function showPlayerTags() {
    const state = window.mirsearch;
    const box = document.querySelector("#tags");
    if (!state || !box || state.playing == null || state.playing === shown) return;
    const id = state.playing;
    shown = id;
    box.textContent = "tags…";
    try {
      const body = await getJson(`/api/recordings/${id}/tags`);
      if (shown !== id) return;
      box.textContent = "";
      const best = Object.entries(body.tags).sort((a, b) => b[1] - a[1]).slice(0, SHOWN);
      for (const [name, p] of best) {
        const chip = node("button", "tag-chip small", `${name} ${p.toFixed(2)}`);
        chip.type = "button";
        chip.title = `recordings ranked by ${name}`;
        chip.addEventListener("click", () => filter(name));
        box.append(chip);
      }
    } catch (err) {
      if (shown === id) box.textContent = `tags not available: ${err.message}`;
    }
  }

  function card() {
    const old = document.querySelector("#tags-card");
    if (old) return old;
    const select = make("select", { id: "tag-select", "aria-label": "tag" });
    select.addEventListener("change", () => select.value && filter(select.value));
    const box = make(
      "section",
      { id: "tags-card", class: "card", "aria-labelledby": "tags-title" },
      make("h2", { id: "tags-title", text: "Filter by tag" }),
      select,
      make("div", { id: "tag-status", class: "status small", role: "status", "aria-live": "polite" }),
      make("ol", { id: "tag-list", class: "results" }),
    );
    const anchor = document.querySelector("#collection-card");
    if (anchor) anchor.after(box);
    else document.body.append(box);
    return box;
  }

  async function fillVocabulary() {
    const box = card();
    const select = box.querySelector("#tag-select");
    try {
      const body = await getJson("/api/tags");
      select.append(node("option", null, "choose a tag…"));
      select.firstChild.value = "";
      for (const t of body.tags) {
        const opt = node("option", null, `${t.name} (${t.group})`);
        opt.value = t.name;
        opt.title = t.description;
        select.append(opt);
      }
    } catch (err) {
      box.querySelector("#tag-status").textContent = `tags not available: ${err.message}`;
    }
  }

  async function filter(tag) {
    const box = card();
    const status = box.querySelector("#tag-status");
    const list = box.querySelector("#tag-list");
    box.querySelector("#tag-select").value = tag;
    status.textContent = `ranking recordings by ${tag}…`;
    list.textContent = "";
    try {
      const body = await getJson(`/api/tags/${encodeURIComponent(tag)}/recordings?top=${TOP}`);
      status.textContent = `${body.matches.length} recordings, most probable first`;
      body.matches.forEach((m, i) => {
        const li = node("li", "result");
        li.dataset.recordingId = String(m.recording_id);
        const main = node("div", "body");
        main.append(node("div", "title", nameOf(m.recording)), node("div", "meta", `${tag} ${m.score.toFixed(2)}`));
        const play = node("button", "small", "▶ Play");
        play.type = "button";
        play.addEventListener("click", () => window.play && window.play(m.recording_id, 0));
        const actions = node("div", "actions");
        actions.append(play);
        li.append(node("div", "rank", String(i + 1)), main, actions);
        list.append(li);
      });
    } catch (err) {
      status.textContent = `tag filter not available: ${err.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const player = document.querySelector("#player");
    if (player) {
      const box = node("div", "tags small", null);
      box.id = "tags";
      box.setAttribute("aria-label", "tags of this recording");
      const seg = document.querySelector("#segments");
      (seg || player).after(box);
      player.addEventListener("loadedmetadata", showPlayerTags);
    }
    fillVocabulary();
  });
})();
