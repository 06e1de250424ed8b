"use strict";
// Renders the dataset summary from the embedded JSON. Every string from the data
// reaches the page through textContent or a validated attribute, never as markup.
(function () {
  const data = JSON.parse(document.getElementById("summary-data").textContent);
  const links = data.links || {};
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }
  // a table cell holding a bar of 120 px times `fraction` (clamped to [0, 1])
  function barCell(fraction) {
    const cell = el("td");
    const bar = svg("svg", { width: 120, height: 12, role: "img" }, cell);
    svg("rect", { x: 0, y: 1, width: 120 * Math.max(0, Math.min(1, fraction)), height: 10, class: "bar" }, bar);
    return cell;
  }
  function fmt(x, digits) { return (x === null || x === undefined) ? "—" : Number(x).toFixed(digits === undefined ? 2 : digits); }
  function pct(x) { return (100 * x).toFixed(1) + "%"; }
  function idCell(id) {
    const td = el("td");
    const href = links[id];
    if (typeof href === "string" && !/^[a-z][a-z0-9+.-]*:/i.test(href)) {
      const a = el("a", id);
      a.setAttribute("href", href);
      td.appendChild(a);
    } else {
      td.textContent = id;
    }
    return td;
  }

  // --- system prompts: one table per group, a box plot per unit
  const groupsSection = document.getElementById("system-groups");
  data.system_groups.forEach(function (group, g) {
    const h = el("h3", "System prompt " + (g + 1) + " · " + group.items + " items");
    groupsSection.appendChild(h);
    groupsSection.appendChild(el("div", group.system, "system-text"));
    if (group.accuracy) {
      const acc = group.accuracy;
      const p = el("p", "Top system unit is the labelled unit in " + acc.correct + " of " + acc.n + " labelled items (" + pct(acc.accuracy) + ").");
      p.id = "accuracy-" + g;
      p.className = "accuracy";
      groupsSection.appendChild(p);
    }
    let lo = 0, hi = 0;
    group.units.forEach(function (u) { lo = Math.min(lo, u.share.min); hi = Math.max(hi, u.share.max); });
    if (hi - lo < 1e-9) hi = lo + 1;
    const W = 320, H = 22, pad = 6;
    const x = function (v) { return pad + (W - 2 * pad) * (v - lo) / (hi - lo); };
    const table = el("table");
    table.className = "units";
    const head = el("tr");
    ["#", "unit", "share per item (" + fmt(lo) + " … " + fmt(hi) + ")", "mean", "median", "top unit", ""].forEach(function (t) { head.appendChild(el("th", t)); });
    if (group.accuracy) head.appendChild(el("th", "labelled: top = label"));
    const thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    const body = el("tbody");
    group.units.forEach(function (u) {
      const tr = el("tr");
      tr.appendChild(el("td", u.position, "num"));
      tr.appendChild(el("td", u.text, "unit-text"));
      const cell = el("td");
      const plot = svg("svg", { width: W, height: H, class: "share-plot", role: "img" });
      svg("line", { x1: x(0), x2: x(0), y1: 0, y2: H, class: "zero" }, plot);
      const s = u.share;
      if (s.n > 0) {
        svg("line", { x1: x(s.min), x2: x(s.max), y1: H / 2, y2: H / 2, class: "whisker" }, plot);
        svg("rect", { x: x(s.q1), y: 4, width: Math.max(1, x(s.q3) - x(s.q1)), height: H - 8, class: "box" }, plot);
        svg("line", { x1: x(s.median), x2: x(s.median), y1: 3, y2: H - 3, class: "median" }, plot);
        s.values.forEach(function (v, i) {
          svg("circle", { cx: x(v), cy: 5 + ((i * 7919) % 13), r: 1.6, class: "dot" }, plot);
        });
      }
      cell.appendChild(plot);
      tr.appendChild(cell);
      tr.appendChild(el("td", fmt(s.mean), "num"));
      tr.appendChild(el("td", fmt(s.median), "num"));
      tr.appendChild(el("td", u.top_count + " (" + pct(u.top_rate) + ")", "num"));
      const rateCell = el("td");
      const rate = svg("svg", { width: 100, height: 12, role: "img" });
      svg("rect", { x: 0, y: 1, width: 100 * u.top_rate, height: 10, class: "bar" }, rate);
      rateCell.appendChild(rate);
      tr.appendChild(rateCell);
      if (group.accuracy) {
        const per = group.accuracy.per_label[String(u.position)];
        const accCell = el("td");
        if (per) {
          const bar = svg("svg", { width: 60, height: 12, role: "img" });
          svg("rect", { x: 0, y: 1, width: 60 * per.correct / per.n, height: 10, class: "bar label-bar" }, bar);
          accCell.appendChild(bar);
          accCell.appendChild(document.createTextNode(" " + per.correct + "/" + per.n));
        }
        tr.appendChild(accCell);
      }
      body.appendChild(tr);
    });
    table.appendChild(body);
    groupsSection.appendChild(table);
  });
  if (!data.system_groups.length) groupsSection.appendChild(el("p", "No item has a system message.", "muted"));

  // --- role shares: bars with mean ± sd
  const rolesSection = document.getElementById("roles");
  const roles = Object.entries(data.roles);
  if (roles.length) {
    const W = 360, row = 22;
    const plot = svg("svg", { width: W + 160, height: row * roles.length + 6, id: "role-plot", role: "img" });
    roles.forEach(function ([role, d], i) {
      const y = 3 + i * row;
      const xs = function (v) { return 90 + W * Math.max(0, Math.min(1, v)); };
      const label = svg("text", { x: 0, y: y + 14 }, plot); label.textContent = role;
      svg("rect", { x: 90, y: y + 3, width: Math.max(0, xs(d.mean) - 90), height: row - 8, class: "bar" }, plot);
      svg("line", { x1: xs(d.mean - d.sd), x2: xs(d.mean + d.sd), y1: y + row / 2, y2: y + row / 2, class: "err" }, plot);
      const value = svg("text", { x: W + 96, y: y + 14 }, plot);
      value.textContent = fmt(d.mean) + " ± " + fmt(d.sd) + " (" + d.n + " items)";
    });
    rolesSection.appendChild(plot);
  } else {
    rolesSection.appendChild(el("p", "No chat items.", "muted"));
  }

  // --- hidden influence
  const hidden = data.hidden_influence;
  const hiddenSection = document.getElementById("hidden");
  if (hidden.audited) {
    const p = el("p", hidden.flagged.length + " of " + hidden.audited + " audited items flagged (" + pct(hidden.flag_rate) + ")" + (hidden.flagged.length ? ":" : "."));
    p.id = "flag-rate";
    hiddenSection.appendChild(p);
    const list = el("div");
    hidden.flagged.forEach(function (id, i) {
      const span = idCell(id);
      const wrap = el("span");
      while (span.firstChild) wrap.appendChild(span.firstChild);
      list.appendChild(wrap);
      if (i < hidden.flagged.length - 1) list.appendChild(document.createTextNode(", "));
    });
    hiddenSection.appendChild(list);
  } else {
    hiddenSection.appendChild(el("p", "No audited item.", "muted"));
  }

  // --- cite items: source use, unsupported claims, citation agreement
  const cite = data.cite;
  const citeSection = document.getElementById("cite");
  if (cite && citeSection) {
    const rates = el("p", cite.unsupported + " of " + cite.claims + " claims unsupported (" + pct(cite.unsupported_rate) + ") in " + cite.items + " items.");
    rates.id = "cite-unsupported";
    citeSection.appendChild(rates);
    const c = cite.citations;
    const agree = el("p", c.cited + " claims with markers: " + c.verified + " verified (" + pct(c.verified_rate) + "), " + c.mismatch + " mismatch (" + pct(c.mismatch_rate) + "); " + c.used_not_cited + (c.used_not_cited === 1 ? " claim uses a source it does" : " claims use a source they do") + " not cite.");
    agree.id = "cite-citations";
    citeSection.appendChild(agree);
    function useTable(id, title, uses) {
      const table = el("table");
      table.id = id;
      const head = el("tr");
      [title, "supports", "share", "", "top", "items"].forEach(function (t) { head.appendChild(el("th", t)); });
      const thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
      const body = el("tbody");
      uses.forEach(function (u) {
        const tr = el("tr");
        tr.appendChild(el("td", u.source, "unit-text"));
        tr.appendChild(el("td", u.supporting, "num"));
        tr.appendChild(el("td", pct(u.share), "num"));
        tr.appendChild(barCell(u.share));
        tr.appendChild(el("td", u.top, "num"));
        tr.appendChild(el("td", u.items, "num"));
        body.appendChild(tr);
      });
      table.appendChild(body);
      citeSection.appendChild(table);
    }
    citeSection.appendChild(el("h3", "By source id"));
    useTable("cite-by-id", "source id", cite.sources_by_id);
    citeSection.appendChild(el("h3", "By source position"));
    useTable("cite-by-position", "position", cite.sources_by_position);
    citeSection.appendChild(el("h3", "Items"));
    const table = el("table");
    table.id = "cite-items";
    const head = el("tr");
    ["id", "question", "answer", "claims", "unsupported", "mismatch"].forEach(function (t) { head.appendChild(el("th", t)); });
    const thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    const body = el("tbody");
    cite.rows.forEach(function (r) {
      const tr = el("tr");
      tr.appendChild(idCell(r.id));
      tr.appendChild(el("td", r.question));
      tr.appendChild(el("td", r.answer));
      tr.appendChild(el("td", r.claims, "num"));
      tr.appendChild(el("td", r.unsupported, "num"));
      tr.appendChild(el("td", r.mismatches, "num"));
      body.appendChild(tr);
    });
    table.appendChild(body);
    citeSection.appendChild(table);
  }

  // --- plain prompts
  const plainSection = document.getElementById("plain");
  const firsts = data.plain_prompts.first_units;
  if (firsts.length) {
    const table = el("table");
    table.id = "first-units";
    const body = el("tbody");
    const max = Math.max.apply(null, firsts.map(function (f) { return f.count; }));
    firsts.forEach(function (f) {
      const tr = el("tr");
      tr.appendChild(barCell(f.count / max));
      tr.appendChild(el("td", f.count, "num"));
      tr.appendChild(el("td", f.text, "unit-text"));
      body.appendChild(tr);
    });
    table.appendChild(body);
    plainSection.appendChild(table);
  } else {
    plainSection.appendChild(el("p", "No plain-prompt item.", "muted"));
  }

  // --- items
  const itemBody = document.querySelector("#item-table tbody");
  const rows = [];
  data.system_groups.forEach(function (g) { g.rows.forEach(function (r) { rows.push(r); }); });
  data.plain_prompts.rows.forEach(function (r) { rows.push(r); });
  rows.forEach(function (r) {
    const tr = el("tr");
    const miss = r.label !== null && r.top_position !== r.label;
    if (miss) tr.classList.add("miss");
    tr.appendChild(idCell(r.id));
    tr.appendChild(el("td", r.user));
    tr.appendChild(el("td", r.output));
    tr.appendChild(el("td", r.top_position === null ? "—" : r.top_position, "num"));
    tr.appendChild(el("td", r.label === null ? "—" : r.label, "num"));
    tr.appendChild(el("td", fmt(r.top_share), "num"));
    tr.appendChild(el("td", r.flagged === null ? "—" : (r.flagged ? "flagged" : "no"), r.flagged ? "flagged" : ""));
    tr.dataset.miss = miss ? "1" : "0";
    itemBody.appendChild(tr);
  });
  document.getElementById("misses-only").addEventListener("change", function (event) {
    const only = event.target.checked;
    itemBody.querySelectorAll("tr").forEach(function (tr) {
      tr.classList.toggle("hidden-row", only && tr.dataset.miss !== "1");
    });
  });

  // --- errors
  const errorBody = document.querySelector("#error-table tbody");
  data.errors.forEach(function (e) {
    const tr = el("tr");
    tr.appendChild(el("td", e.id));
    tr.appendChild(el("td", e.line, "num"));
    tr.appendChild(el("td", e.error_type));
    tr.appendChild(el("td", e.error));
    errorBody.appendChild(tr);
  });
  if (!data.errors.length) document.getElementById("errors").appendChild(el("p", "None.", "muted"));
})();
