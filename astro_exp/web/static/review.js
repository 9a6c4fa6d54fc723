// astro-exp Review page: label one picture per key press, no page loads.
// The queue comes from /api/review in batches (the next batch is fetched while fewer than
// PREFETCH_AT pictures are left, their thumbnails preloaded), so the next picture shows at
// once; each answer is POSTed as JSON to /api/review/<id> while the person goes on.
"use strict";

(() => {
  const PREFETCH_AT = 5; // fetch more when fewer than this many pictures are left
  const PRELOAD = 3; // thumbnails of the next pictures loaded ahead
  const WHO_KEY = "astro-exp.who";

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("review");
    if (!root) return;
    const $ = (id) => document.getElementById(id);
    const els = {
      img: $("review-img"), link: $("review-link"), position: $("review-position"),
      title: $("review-title"), date: $("review-date"), weak: $("review-weak"),
      model: $("review-model"), probs: $("review-probs"), status: $("review-status"),
      left: $("review-left"), who: $("review-who"),
    };
    const buttons = Array.from(root.querySelectorAll("button.labelkey"));
    const classes = buttons.map((b) => b.dataset.label);
    const multilabel = root.dataset.task === "multilabel";
    const batch = parseInt(root.dataset.batch, 10) || 20;
    const defaultWho = root.dataset.defaultWho || "web";

    // items: every picture fetched, in queue order; pos: the one shown; answered: how many
    // of them this page stored (the server's queue no longer holds those); pending: answers
    // on their way (maybe stored already: counted as not, so a batch repeats, never skips)
    const s = { items: [], pos: 0, answered: 0, pending: 0, left: null, done: false, loading: null, toggled: new Set() };
    const preloaded = [];

    els.who.value = localStorage.getItem(WHO_KEY) || defaultWho;
    els.who.addEventListener("change", () => {
      const v = els.who.value.trim();
      if (v) localStorage.setItem(WHO_KEY, v); else localStorage.removeItem(WHO_KEY);
    });

    const say = (text, error = false) => {
      els.status.textContent = text;
      els.status.classList.toggle("error", error);
    };

    async function getJSON(url, init) {
      const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, ...init });
      let body = null;
      try { body = await resp.json(); } catch (e) { body = null; }
      if (!resp.ok) throw new Error((body && body.error) || `HTTP ${resp.status}`);
      return body;
    }

    function fetchMore() {
      if (s.loading) return s.loading;
      if (s.done) return Promise.resolve();
      const params = new URLSearchParams({ order: root.dataset.order, n: String(batch) });
      params.set("offset", String(Math.max(0, s.items.length - s.answered - s.pending)));
      if (root.dataset.run) params.set("run", root.dataset.run);
      s.loading = getJSON(`${root.dataset.api}?${params}`)
        .then((body) => {
          const have = new Set(s.items.map((it) => it.id));
          for (const it of body.items) if (!have.has(it.id)) s.items.push(it);
          s.left = body.total;
          if (body.items.length < batch) s.done = true;
          preload();
        })
        .catch((e) => say(`Could not load pictures: ${e.message}`, true))
        .finally(() => { s.loading = null; });
      return s.loading;
    }

    function preload() {
      preloaded.length = 0;
      for (const it of s.items.slice(s.pos + 1, s.pos + 1 + PRELOAD)) {
        const img = new Image();
        img.src = it.thumb_url;
        preloaded.push(img);
      }
    }

    function probRow(p) {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = p.label;
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = p.probability;
      const pct = document.createElement("span");
      pct.className = "p";
      pct.textContent = `${(p.probability * 100).toFixed(1)}%`;
      li.append(name, bar, pct);
      return li;
    }

    function showEmpty() {
      els.img.removeAttribute("src");
      els.img.alt = "";
      els.title.textContent = "Nothing left to review";
      els.date.textContent = "Every picture of this run has a label from a person. Train again to use them.";
      els.weak.textContent = "–";
      els.model.textContent = "–";
      els.probs.replaceChildren();
      els.position.textContent = "";
      els.left.textContent = "0 left to review";
      root.dataset.current = "";
    }

    function current() { return s.items[s.pos] || null; }

    function show() {
      const it = current();
      if (!it) {
        if (!s.done) { fetchMore().then(() => { if (current()) show(); else if (s.done) showEmpty(); }); return; }
        showEmpty();
        return;
      }
      root.dataset.current = String(it.id);
      els.img.src = it.thumb_url;
      els.img.alt = it.title || "picture";
      els.link.href = it.url;
      const big = new Image(); // the original replaces the thumbnail once it is here
      big.onload = () => { if (current() === it) els.img.src = it.image_url; };
      big.src = it.image_url;
      els.title.textContent = it.title || "Untitled";
      els.date.textContent = it.date || "";
      els.weak.textContent = it.weak_label || "–";
      els.model.textContent = it.label ? `${it.label} ${(100 * (it.confidence || 0)).toFixed(0)}%` : "no prediction";
      els.probs.replaceChildren(...(it.top_k || []).slice(0, 3).map(probRow));
      s.toggled = new Set(multilabel ? (it.stored ? it.stored.split("|") : it.suggested || []) : []);
      for (const b of buttons) {
        b.classList.toggle("model", (it.suggested || []).includes(b.dataset.label));
        b.setAttribute("aria-pressed", String(s.toggled.has(b.dataset.label) || (!multilabel && it.stored === b.dataset.label)));
      }
      els.position.textContent = `${s.pos + 1} of ${s.items.length}${s.done ? "" : "+"} loaded${it.stored ? ` · stored: ${it.stored}` : ""}`;
      if (s.left !== null) els.left.textContent = `${s.left} left to review`;
      if (s.items.length - s.pos - 1 < PREFETCH_AT) fetchMore();
      preload();
    }

    function move(step) {
      const next = s.pos + step;
      if (next < 0) { say("This is the first picture."); return; }
      if (next >= s.items.length && s.done) { s.pos = s.items.length; showEmpty(); return; }
      s.pos = next;
      show();
    }

    async function answer(labels) {
      const it = current();
      if (!it) return;
      const who = els.who.value.trim() || defaultWho;
      const payload = multilabel ? { labels, who } : { label: labels[0], who };
      const before = it.stored;
      it.stored = labels.join("|");
      if (!before) s.pending += 1;
      move(1); // the next picture at once; the answer is stored meanwhile
      try {
        const got = await getJSON(`${root.dataset.answer}${it.id}`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(payload),
        });
        if (!before) { s.answered += 1; if (s.left !== null) s.left = Math.max(0, s.left - 1); }
        if (current()) els.left.textContent = `${s.left} left to review`;
        say(`Stored “${got.label}” for ${it.title || `picture ${it.id}`} (by ${got.who}, ${got.created_at}).`);
      } catch (e) {
        it.stored = before;
        say(`Not stored for ${it.title || `picture ${it.id}`}: ${e.message}`, true);
      } finally {
        if (!before) s.pending -= 1;
      }
    }

    function enter() {
      const it = current();
      if (!it) return;
      if (multilabel) {
        if (!s.toggled.size) { say("Toggle at least one label (keys 1…), then Enter."); return; }
        answer(classes.filter((c) => s.toggled.has(c)));
      } else if (it.label) {
        answer([it.label]);
      } else {
        say("The model has no label for this picture: press a number key.");
      }
    }

    function press(index) {
      const it = current();
      if (!it || index >= classes.length) return;
      const label = classes[index];
      if (!multilabel) { answer([label]); return; }
      if (s.toggled.has(label)) s.toggled.delete(label); else s.toggled.add(label);
      buttons[index].setAttribute("aria-pressed", String(s.toggled.has(label)));
    }

    buttons.forEach((b, i) => b.addEventListener("click", () => press(i)));
    root.querySelector("[data-action=prev]").addEventListener("click", () => move(-1));
    root.querySelector("[data-action=next]").addEventListener("click", () => move(1));
    root.querySelector("[data-action=enter]").addEventListener("click", enter);

    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.target.closest && e.target.closest("input, select, textarea, [contenteditable]")) return;
      if (/^[1-9]$/.test(e.key)) {
        const index = parseInt(e.key, 10) - 1;
        if (index < classes.length && buttons[index].dataset.key) { e.preventDefault(); press(index); }
      } else if (e.key === "Enter") {
        e.preventDefault(); // not also a click of the focused button
        enter();
      } else if (e.key === "ArrowRight") {
        e.preventDefault(); move(1);
      } else if (e.key === "ArrowLeft") {
        e.preventDefault(); move(-1);
      }
    });

    say("Keys: a number stores that label, Enter agrees, ← → move.");
    fetchMore().then(show);
  });
})();
