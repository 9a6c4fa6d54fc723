// astro-exp web app: small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // filter drop-downs apply at once
  for (const el of document.querySelectorAll("[data-autosubmit]")) {
    el.addEventListener("change", () => {
      const form = el.form;
      const page = form && form.querySelector("input[name=page]");
      if (page) page.remove();
      if (form) form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  }

  // sortable tables: click a header; numbers sort numerically, missing values last
  for (const table of document.querySelectorAll("table.sortable")) {
    const headers = table.tHead ? Array.from(table.tHead.rows[0].cells) : [];
    headers.forEach((th, col) => {
      if (th.classList.contains("nosort")) return;
      th.tabIndex = 0;
      th.setAttribute("role", "button");
      const sort = () => {
        const numeric = th.dataset.type === "num";
        const asc = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (row) => {
          const cell = row.cells[col];
          const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
          if (!numeric) return raw.toLowerCase();
          const v = parseFloat(raw);
          return Number.isNaN(v) ? null : v;
        };
        rows.sort((a, b) => {
          const ka = key(a), kb = key(b);
          if (ka === null && kb === null) return 0;
          if (ka === null) return 1;
          if (kb === null) return -1;
          const c = ka < kb ? -1 : ka > kb ? 1 : 0;
          return asc ? c : -c;
        });
        rows.forEach((r) => body.appendChild(r));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  }

  // compare: needs at least one run ticked
  const compare = document.getElementById("compare-form");
  if (compare) {
    const btn = document.getElementById("compare-btn");
    const update = () => { btn.disabled = !compare.querySelector("input[name=run]:checked"); };
    compare.addEventListener("change", update);
    update();
  }

  // classify: show the chosen file's name
  const file = document.querySelector("#classify input[type=file]");
  if (file) {
    file.addEventListener("change", () => {
      const span = file.closest("label").querySelector("span");
      if (file.files.length) span.textContent = file.files[0].name;
    });
  }
});
