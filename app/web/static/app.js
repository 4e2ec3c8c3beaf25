// Progressive enhancement for the mapping editor: validation as you type, preview and diff. Every page works
// without this file; it only adds what needs a round trip without leaving the page.
"use strict";

(function () {
  const form = document.getElementById("mapping-form");
  if (!form) return;
  const textarea = document.getElementById("content");
  const problems = document.getElementById("problems");
  const token = document.querySelector('meta[name="csrf-token"]').content;
  let timer = null;

  function post(url, extra) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify(Object.assign({ content: textarea.value }, extra || {})),
      credentials: "same-origin",
    }).then((response) => response.json().then((data) => ({ status: response.status, data })));
  }

  function showProblems(list) {
    problems.textContent = "";
    problems.classList.toggle("ok", list.length === 0);
    if (list.length === 0) {
      problems.textContent = "Valid.";
      return;
    }
    const ul = document.createElement("ul");
    for (const p of list) {
      const li = document.createElement("li");
      li.className = "problem";
      li.dataset.line = p.line === null ? "" : String(p.line);
      li.textContent = (p.line ? "line " + p.line + ": " : "") + p.field + ": " + p.message;
      ul.appendChild(li);
    }
    problems.appendChild(ul);
  }

  function validate() {
    post(form.dataset.validate).then(({ data }) => showProblems(data.problems || []));
  }

  // The columns whose values the draft changes, in the draft's order: shown first and marked in both tables, so
  // what the edit does is visible without scrolling sideways.
  function changedColumns(active, draft) {
    return draft.columns.filter(
      (c) =>
        !active.columns.includes(c) ||
        draft.rows.some((row, i) => !active.rows[i] || active.rows[i][c] !== row[c]),
    );
  }

  function ordered(columns, changed) {
    const first = columns.filter((c) => c === "record_id");
    const marked = changed.filter((c) => columns.includes(c) && c !== "record_id");
    return first.concat(marked, columns.filter((c) => !first.includes(c) && !marked.includes(c)));
  }

  function table(result, changed) {
    const wrap = document.createElement("div");
    const t = document.createElement("table");
    const columns = ordered(result.columns, changed);
    const head = t.createTHead().insertRow();
    for (const c of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = c;
      if (changed.includes(c)) th.className = "changed";
      head.appendChild(th);
    }
    const body = t.createTBody();
    for (const row of result.rows) {
      const tr = body.insertRow();
      for (const c of columns) {
        const td = tr.insertCell();
        td.textContent = row[c] === null ? "" : row[c];
        if (changed.includes(c)) td.className = "changed";
      }
    }
    wrap.appendChild(t);
    for (const q of result.quarantined) {
      const p = document.createElement("p");
      p.className = "problems";
      p.textContent = "Quarantined " + (q.id || "?") + ": " + q.reason;
      wrap.appendChild(p);
    }
    return wrap;
  }

  textarea.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(validate, 300);
  });
  document.getElementById("diff-button").addEventListener("click", () => {
    post(form.dataset.diff).then(({ data }) => {
      document.getElementById("diff").textContent = data.diff || "(no change)";
    });
  });
  function preview(live) {
    const active = document.getElementById("preview-active");
    const draft = document.getElementById("preview-draft");
    const sample = document.getElementById("preview-sample");
    active.textContent = draft.textContent = live ? "Pulling sample records…" : "Mapping sample records…";
    sample.textContent = "";
    post(form.dataset.preview, { live: live }).then(({ data }) => {
      active.textContent = draft.textContent = "";
      if (data.problems && data.problems.length) {
        showProblems(data.problems);
        return;
      }
      if (data.error) {
        draft.textContent = data.error;
        return;
      }
      sample.textContent = data.records + " record(s) from " + data.sample + ".";
      const changed = changedColumns(data.active, data.draft);
      active.appendChild(table(data.active, changed));
      const out = table(data.draft, changed);
      out.id = "preview-draft-result";
      draft.appendChild(out);
    });
  }

  document.getElementById("preview-button").addEventListener("click", () => preview(false));
  document.getElementById("preview-live-button").addEventListener("click", () => preview(true));
})();
