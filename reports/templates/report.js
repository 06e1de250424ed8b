// attrib report: the page's behaviour. Inlined into each report by attrib.reports.html; reads the result
// from the JSON block #attrib-data and writes prompt and output text only as text (textContent).
(function () {
  "use strict";

  // ------------------------------------------------------------------ data

  const dataText = document.getElementById("attrib-data").textContent;
  const data = JSON.parse(dataText);
  const prompt = data.prompt || "";
  const units = data.units || [];
  const tokens = data.output_tokens || [];
  const scores = data.scores || [];
  const nUnits = units.length;
  const nTokens = tokens.length;
  // A contrastive result: the contrast's tokens are the columns from data.contrast.start on.
  const contrastStart = data.contrast ? data.contrast.start : nTokens;
  function columnName(t) {
    return t >= contrastStart ? "contrast token " + (t - contrastStart) : "output token " + t;
  }
  // The unit of every score, set by the renderer from the result (never written here).
  const UNIT = document.body.dataset.unit || "";
  const MAX_BANDS = 120;
  const TOP_K = 20;

  const totals = new Float64Array(nUnits);
  for (let i = 0; i < nUnits; i++) {
    if (data.unit_scores && data.unit_scores.length === nUnits) {
      totals[i] = data.unit_scores[i];
    } else {
      let sum = 0;
      for (let t = 0; t < nTokens; t++) sum += scores[i][t];
      totals[i] = sum;
    }
  }

  // ------------------------------------------------------------------ helpers

  const NEGATIVE = [33, 102, 172];
  const MIDDLE = [247, 247, 247];
  const POSITIVE = [178, 24, 43];

  /** Diverging colour for value on a scale symmetric around 0 (blue < 0 < red). */
  function shade(value, maxAbs) {
    const t = maxAbs > 0 ? Math.min(1, Math.abs(value) / maxAbs) : 0;
    const end = value < 0 ? NEGATIVE : POSITIVE;
    return [
      Math.round(MIDDLE[0] + (end[0] - MIDDLE[0]) * t),
      Math.round(MIDDLE[1] + (end[1] - MIDDLE[1]) * t),
      Math.round(MIDDLE[2] + (end[2] - MIDDLE[2]) * t),
    ];
  }

  function rgb(colour) {
    return "rgb(" + colour[0] + ", " + colour[1] + ", " + colour[2] + ")";
  }

  /** Dark or light text, whichever reads on the given background. */
  function textOn(colour) {
    const luma = (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]) / 255;
    return luma < 0.55 ? "#ffffff" : "#1d1d1f";
  }

  function signed(value, digits) {
    const text = value.toFixed(digits);
    return value >= 0 && text.charAt(0) !== "-" ? "+" + text : text;
  }

  function percent(part, whole) {
    return whole > 0 ? (100 * part / whole).toFixed(1) + "%" : "0.0%";
  }

  /** Text on one line, control characters shown as symbols (for labels only). */
  function flat(text) {
    return text.replace(/\r\n|\n|\r/g, "\u21b5").replace(/\t/g, "\u2192");
  }

  /** Token for a caption: quoted, control characters escaped. */
  function quoted(text) {
    return "'" + text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t") + "'";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Largest magnitude and sum of positive entries of a vector. */
  function summarise(vector) {
    let maxAbs = 0;
    let positive = 0;
    for (let i = 0; i < vector.length; i++) {
      const v = vector[i];
      if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
      if (v > 0) positive += v;
    }
    return { maxAbs: maxAbs, positive: positive };
  }

  // ------------------------------------------------------------------ state

  const state = {
    token: -1,                  // -1: totals over all output tokens
    vector: totals,
    maxAbs: 0,
    positive: 0,
  };

  function vectorFor(token) {
    if (token < 0) return totals;
    const column = new Float64Array(nUnits);
    for (let i = 0; i < nUnits; i++) column[i] = scores[i][token];
    return column;
  }

  // ------------------------------------------------------------------ tooltip

  const tooltip = document.getElementById("tooltip");

  function showTooltip(text, event) {
    tooltip.textContent = text;
    tooltip.hidden = false;
    moveTooltip(event);
  }

  function moveTooltip(event) {
    const pad = 12;
    const box = tooltip.getBoundingClientRect();
    let x = event.clientX + pad;
    let y = event.clientY + pad + 4;
    if (x + box.width > window.innerWidth - 4) x = Math.max(4, event.clientX - box.width - pad);
    if (y + box.height > window.innerHeight - 4) y = Math.max(4, event.clientY - box.height - pad);
    tooltip.style.left = x + "px";
    tooltip.style.top = y + "px";
  }

  function hideTooltip() {
    tooltip.hidden = true;
  }

  // ------------------------------------------------------------------ 1. prompt

  const promptBox = document.getElementById("prompt");
  const spans = new Array(nUnits);

  /** Append the units of one text to parent: a span per unit, the text between units as plain text. */
  function appendUnits(parent, text, indices) {
    indices.sort(function (a, b) { return units[a].start - units[b].start || a - b; });
    let cursor = 0;
    for (const i of indices) {
      const unit = units[i];
      if (unit.start > cursor) parent.appendChild(document.createTextNode(text.slice(cursor, unit.start)));
      const span = document.createElement("span");
      span.className = "unit";
      span.dataset.index = String(i);
      const from = Math.max(unit.start, cursor);
      span.textContent = unit.end > from ? text.slice(from, unit.end) : unit.text;
      spans[i] = span;
      parent.appendChild(span);
      cursor = Math.max(cursor, unit.end);
    }
    if (cursor < text.length) parent.appendChild(document.createTextNode(text.slice(cursor)));
  }

  /** Build the prompt once; a chat prompt gets one box per message, headed by its role. */
  function buildPrompt() {
    const fragment = document.createDocumentFragment();
    const messages = Array.isArray(data.messages) ? data.messages : [];
    if (messages.length) {
      messages.forEach(function (message, m) {
        const box = el("div", "message");
        box.dataset.message = String(m);
        box.appendChild(el("div", "message-role", String(message.role)));
        const body = el("div", "message-content");
        const indices = [];
        for (let i = 0; i < nUnits; i++) if (units[i].message === m) indices.push(i);
        appendUnits(body, String(message.content || ""), indices);
        box.appendChild(body);
        fragment.appendChild(box);
      });
    } else {
      const indices = [];
      for (let i = 0; i < nUnits; i++) indices.push(i);
      appendUnits(fragment, prompt, indices);
    }
    promptBox.appendChild(fragment);

    promptBox.addEventListener("mouseover", function (event) {
      const span = event.target.closest ? event.target.closest(".unit") : null;
      if (!span || !promptBox.contains(span)) return;
      showTooltip(unitTooltip(Number(span.dataset.index)), event);
    });
    promptBox.addEventListener("mousemove", function (event) {
      if (!tooltip.hidden) moveTooltip(event);
    });
    promptBox.addEventListener("mouseout", function (event) {
      const to = event.relatedTarget;
      if (!to || !to.closest || !to.closest(".unit")) hideTooltip();
    });
  }

  function unitTooltip(i) {
    const v = state.vector[i];
    return signed(v, 3) + " " + UNIT + " \u00b7 " + percent(Math.max(v, 0), state.positive) + " of positive attribution";
  }

  /** Re-shade the existing spans by the current vector (style and data-score only). */
  function shadePrompt() {
    const vector = state.vector;
    const maxAbs = state.maxAbs;
    for (let i = 0; i < nUnits; i++) {
      const span = spans[i];
      const colour = shade(vector[i], maxAbs);
      span.style.backgroundColor = rgb(colour);
      span.style.color = textOn(colour);
      span.dataset.score = vector[i].toFixed(6);
    }
  }

  // ------------------------------------------------------------------ 2. output tokens

  const outputBox = document.getElementById("output");
  const totalButton = document.getElementById("show-total");
  const viewLabel = document.getElementById("view-label");
  const tokenButtons = [];

  function buildOutput() {
    const fragment = document.createDocumentFragment();
    for (let t = 0; t < nTokens; t++) {
      if (t === contrastStart) {
        fragment.appendChild(el("span", "contrast-label", "contrast:"));
      }
      const button = el("button", t >= contrastStart ? "token contrast" : "token", tokens[t]);
      button.type = "button";
      button.dataset.index = String(t);
      button.setAttribute("aria-pressed", "false");
      button.title = columnName(t) + ": " + quoted(tokens[t]) +
        (t >= contrastStart ? " (scores: how much a unit lowers this token's log-probability)" : "");
      tokenButtons.push(button);
      fragment.appendChild(button);
    }
    outputBox.appendChild(fragment);
    outputBox.addEventListener("click", function (event) {
      const button = event.target.closest ? event.target.closest(".token") : null;
      if (!button) return;
      const t = Number(button.dataset.index);
      setView(state.token === t ? -1 : t);
    });
    totalButton.addEventListener("click", function () { setView(-1); });
  }

  function updateOutput() {
    for (let t = 0; t < nTokens; t++) {
      tokenButtons[t].setAttribute("aria-pressed", t === state.token ? "true" : "false");
    }
    totalButton.setAttribute("aria-pressed", state.token < 0 ? "true" : "false");
    viewLabel.textContent = state.token < 0
      ? (data.contrast ? "contrastive total over the output's and the contrast's tokens" : "total over all output tokens")
      : columnName(state.token) + ": " + quoted(tokens[state.token]);
    document.getElementById("legend-min").textContent = (-state.maxAbs).toFixed(3);
    document.getElementById("legend-max").textContent = "+" + state.maxAbs.toFixed(3);
  }

  // ------------------------------------------------------------------ 3. matrix

  const canvas = document.getElementById("matrix");
  const bands = [];            // {first, last, row: Float64Array(nTokens)}
  let matrixMaxAbs = 0;
  let layout = null;           // geometry of the last drawing, for hit testing

  /** Group consecutive units into at most MAX_BANDS bands; sum their rows. */
  function buildBands() {
    const size = Math.max(1, Math.ceil(nUnits / MAX_BANDS));
    for (let first = 0; first < nUnits; first += size) {
      const last = Math.min(nUnits, first + size) - 1;
      const row = new Float64Array(nTokens);
      for (let i = first; i <= last; i++) {
        for (let t = 0; t < nTokens; t++) row[t] += scores[i][t];
      }
      for (let t = 0; t < nTokens; t++) matrixMaxAbs = Math.max(matrixMaxAbs, Math.abs(row[t]));
      bands.push({ first: first, last: last, row: row });
    }
    const note = document.getElementById("matrix-note");
    note.textContent = size > 1
      ? nUnits + " units grouped into " + bands.length + " bands of " + size +
        " consecutive units (rows summed; each band labelled by its first unit). Scale: \u00b1" +
        matrixMaxAbs.toFixed(3) + " " + UNIT + ". Click a column to select its output token."
      : "Scale: \u00b1" + matrixMaxAbs.toFixed(3) + " " + UNIT + ". Click a column to select its output token.";
  }

  function fitText(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "\u2026").width <= width) lo = mid; else hi = mid - 1;
    }
    return text.slice(0, lo) + "\u2026";
  }

  /** Draw the whole heatmap (called once per view change and on resize). */
  function drawMatrix() {
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const available = Math.max(320, (canvas.parentElement.clientWidth || 800) - 2);
    const labelW = 180;
    const labelH = 90;
    const cellW = nTokens ? Math.max(6, Math.min(40, Math.floor((available - labelW - 12) / nTokens))) : 0;
    const nBands = bands.length;
    const cellH = nBands <= 30 ? 18 : nBands <= 60 ? 12 : 8;
    const width = labelW + cellW * nTokens + 12;
    const height = labelH + cellH * nBands + 12;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    layout = { x0: labelW, y0: labelH, cellW: cellW, cellH: cellH };

    // cells
    for (let b = 0; b < nBands; b++) {
      const row = bands[b].row;
      for (let t = 0; t < nTokens; t++) {
        ctx.fillStyle = rgb(shade(row[t], matrixMaxAbs));
        ctx.fillRect(labelW + t * cellW, labelH + b * cellH, cellW, cellH);
      }
    }

    // unit (band) labels down the side
    ctx.fillStyle = "#1d1d1f";
    ctx.font = "11px ui-monospace, Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    const rowStep = Math.max(1, Math.ceil(12 / cellH));
    for (let b = 0; b < nBands; b += rowStep) {
      const label = fitText(ctx, flat(units[bands[b].first].text), labelW - 10);
      ctx.fillText(label, labelW - 6, labelH + b * cellH + cellH / 2);
    }

    // output token labels along the top, rotated
    ctx.textAlign = "left";
    const colStep = Math.max(1, Math.ceil(12 / Math.max(1, cellW)));
    for (let t = 0; t < nTokens; t += colStep) {
      ctx.save();
      ctx.translate(labelW + t * cellW + cellW / 2, labelH - 6);
      ctx.rotate(-Math.PI / 3);
      ctx.font = (t === state.token ? "bold " : "") + "11px ui-monospace, Menlo, Consolas, monospace";
      const shown = (t >= contrastStart ? "vs " : "") + quoted(tokens[t]);
      ctx.fillText(fitText(ctx, shown, labelH), 0, 0);
      ctx.restore();
    }

    // a line between the output's columns and the contrast's
    if (contrastStart < nTokens && nBands) {
      ctx.strokeStyle = "#1d1d1f";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(labelW + contrastStart * cellW, labelH - 4);
      ctx.lineTo(labelW + contrastStart * cellW, labelH + cellH * nBands);
      ctx.stroke();
    }

    // selected column
    if (state.token >= 0 && nBands) {
      ctx.strokeStyle = "#1d1d1f";
      ctx.lineWidth = 2;
      ctx.strokeRect(labelW + state.token * cellW + 1, labelH + 1, cellW - 2, cellH * nBands - 2);
    }
  }

  function matrixCell(event) {
    if (!layout) return null;
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left - layout.x0;
    const y = event.clientY - box.top - layout.y0;
    if (x < 0 || y < 0) return null;
    const t = Math.floor(x / layout.cellW);
    const b = Math.floor(y / layout.cellH);
    if (t >= nTokens || b >= bands.length) return null;
    return { t: t, b: b };
  }

  function bindMatrix() {
    canvas.addEventListener("mousemove", function (event) {
      const cell = matrixCell(event);
      if (!cell) { hideTooltip(); return; }
      const band = bands[cell.b];
      const who = band.first === band.last
        ? "unit " + band.first + " " + quoted(units[band.first].text)
        : "units " + band.first + "\u2013" + band.last + " (from " + quoted(units[band.first].text) + ")";
      showTooltip(who + " \u00d7 " + columnName(cell.t) + " " + quoted(tokens[cell.t]) +
        ": " + signed(band.row[cell.t], 3) + " " + UNIT, event);
    });
    canvas.addEventListener("mouseleave", hideTooltip);
    canvas.addEventListener("click", function (event) {
      const cell = matrixCell(event);
      if (cell) setView(state.token === cell.t ? -1 : cell.t);
    });
  }

  // ------------------------------------------------------------------ 4. roles

  const rolesBox = document.getElementById("roles");
  const ROLE_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];
  const roleNames = [];
  for (let i = 0; i < nUnits; i++) {
    if (roleNames.indexOf(units[i].role) < 0) roleNames.push(units[i].role);
  }

  function updateRoles() {
    if (!rolesBox) return;
    const share = {};
    for (const name of roleNames) share[name] = 0;
    for (let i = 0; i < nUnits; i++) {
      if (state.vector[i] > 0) share[units[i].role] += state.vector[i];
    }
    const bar = rolesBox.querySelector(".bar");
    const labels = rolesBox.querySelector(".labels");
    bar.textContent = "";
    labels.textContent = "";
    roleNames.forEach(function (name, k) {
      const colour = ROLE_COLOURS[k % ROLE_COLOURS.length];
      const fraction = state.positive > 0 ? share[name] / state.positive : 0;
      const segment = el("div");
      segment.style.width = (100 * fraction) + "%";
      segment.style.background = colour;
      segment.title = name + ": " + percent(share[name], state.positive);
      bar.appendChild(segment);
      const label = el("span", "role-label");
      label.dataset.role = name;
      const swatch = el("span", "swatch");
      swatch.style.background = colour;
      label.appendChild(swatch);
      label.appendChild(document.createTextNode(name + ": " + percent(share[name], state.positive) +
        " (" + signed(share[name], 3) + " " + UNIT + ")"));
      labels.appendChild(label);
    });
    if (!(state.positive > 0)) labels.appendChild(el("span", "muted", "no positive attribution in this view"));
  }

  // ------------------------------------------------------------------ 6. top units

  const topBody = document.querySelector("#top tbody");

  function updateTop() {
    const vector = state.vector;
    const order = [];
    for (let i = 0; i < nUnits; i++) order.push(i);
    order.sort(function (a, b) { return vector[b] - vector[a] || a - b; });
    const fragment = document.createDocumentFragment();
    order.slice(0, TOP_K).forEach(function (i, rank) {
      const unit = units[i];
      const row = el("tr");
      row.dataset.index = String(i);
      row.appendChild(el("td", "num", String(rank + 1)));
      row.appendChild(el("td", "num", signed(vector[i], 3)));
      row.appendChild(el("td", "num", vector[i] > 0 ? percent(vector[i], state.positive) : "\u2014"));
      row.appendChild(el("td", "text", unit.text));
      row.appendChild(el("td", "num", unit.start + "\u2013" + unit.end));
      fragment.appendChild(row);
    });
    topBody.textContent = "";
    topBody.appendChild(fragment);
    document.getElementById("top-note").textContent =
      "Top " + Math.min(TOP_K, nUnits) + " of " + nUnits + " units by score in the current view (" +
      viewLabel.textContent + "). Click a row to find the unit in the prompt.";
  }

  topBody.addEventListener("click", function (event) {
    const row = event.target.closest ? event.target.closest("tr") : null;
    if (!row) return;
    const span = spans[Number(row.dataset.index)];
    if (!span) return;
    span.scrollIntoView({ block: "center", behavior: "smooth" });
    span.classList.add("flash");
    setTimeout(function () { span.classList.remove("flash"); }, 1200);
  });

  // ------------------------------------------------------------------ 5. HiPe tree

  const tree = document.getElementById("tree");
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const key in attributes) node.setAttribute(key, String(attributes[key]));
    return node;
  }

  /** Draw the scored chunks: one row per depth, each bar over its char span. */
  function drawTree() {
    if (!tree || !data.trace || !data.trace.chunks) return;
    const chunks = data.trace.chunks;
    const length = Math.max(1, prompt.length);
    let depths = 0;
    let maxAbs = 0;
    for (const chunk of chunks) {
      depths = Math.max(depths, chunk.depth + 1);
      maxAbs = Math.max(maxAbs, Math.abs(chunk.score || 0));
    }
    const width = Math.max(320, tree.parentElement.clientWidth || 800);
    const labelW = 64;
    const rowH = 18;
    const gap = 4;
    const barW = width - labelW - 8;
    const height = depths * (rowH + gap) + 4;
    tree.textContent = "";
    tree.setAttribute("width", String(width));
    tree.setAttribute("height", String(height));
    tree.setAttribute("viewBox", "0 0 " + width + " " + height);

    for (let d = 0; d < depths; d++) {
      const y = d * (rowH + gap) + 2;
      const label = svg("text", { x: 0, y: y + rowH / 2, "dominant-baseline": "middle", "font-size": 11, fill: "#6a6a70" });
      label.textContent = "depth " + d;
      tree.appendChild(label);
      tree.appendChild(svg("rect", { x: labelW, y: y, width: barW, height: rowH, fill: "#f6f6f8" }));
    }
    chunks.forEach(function (chunk, k) {
      const x = labelW + (chunk.char_start / length) * barW;
      const w = Math.max(1, ((chunk.char_end - chunk.char_start) / length) * barW);
      const y = chunk.depth * (rowH + gap) + 2;
      const score = chunk.score || 0;
      const rect = svg("rect", {
        x: x.toFixed(2), y: y, width: w.toFixed(2), height: rowH,
        fill: rgb(shade(score, maxAbs)),
        stroke: chunk.refined ? "#1d1d1f" : "#ffffff",
        "stroke-width": chunk.refined ? 1.5 : 0.5,
        class: "chunk" + (chunk.refined ? " refined" : "") + (chunk.leaf ? " leaf" : ""),
        "data-index": k,
      });
      const title = document.createElementNS(SVG, "title");
      title.textContent = "depth " + chunk.depth + " \u00b7 units " + chunk.start + "\u2013" + chunk.end +
        " \u00b7 chars " + chunk.char_start + "\u2013" + chunk.char_end + " \u00b7 " + signed(score, 3) + " " + UNIT +
        (chunk.refined ? " \u00b7 refined" : "") + (chunk.leaf ? " \u00b7 leaf" : "") + "\n" +
        flat(prompt.slice(chunk.char_start, Math.min(chunk.char_end, chunk.char_start + 160)));
      rect.appendChild(title);
      tree.appendChild(rect);
    });
  }

  // ------------------------------------------------------------------ 7. download

  function bindDownload() {
    const link = document.getElementById("download");
    try {
      const blob = new Blob([dataText], { type: "application/json" });
      link.href = URL.createObjectURL(blob);
      link.setAttribute("download", "attrib-result.json");
    } catch (error) {
      link.textContent = "download unavailable: " + error;
    }
  }

  // ------------------------------------------------------------------ view changes

  function setView(token) {
    state.token = token >= 0 && token < nTokens ? token : -1;
    state.vector = vectorFor(state.token);
    const summary = summarise(state.vector);
    state.maxAbs = summary.maxAbs;
    state.positive = summary.positive;
    hideTooltip();
    shadePrompt();
    updateOutput();
    drawMatrix();
    updateRoles();
    updateTop();
  }

  let resizeTimer = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { drawMatrix(); drawTree(); }, 150);
  });

  // ------------------------------------------------------------------ 8. claims and sources

  // Selecting a claim highlights its supporting sources; below the source level it also shades
  // each unit inside the sources by its score for the claim (#attrib-claim-units: one row of
  // unit scores per claim, computed by the renderer), on the prompt view's colour scale, and
  // frames the unit the claim needs most in each supporting source given alone (data-evidence).
  const claimButtons = Array.prototype.slice.call(document.querySelectorAll("#claims .claim"));
  const sourceItems = Array.prototype.slice.call(document.querySelectorAll("#sources .source"));
  const sourceUnits = Array.prototype.slice.call(document.querySelectorAll("#sources .source-unit"));
  const claimUnitsNode = document.getElementById("attrib-claim-units");
  const claimUnits = claimUnitsNode ? JSON.parse(claimUnitsNode.textContent) : null;

  function selectClaim(k) {
    const button = claimButtons[k];
    const ids = (button.dataset.supports || "").split(" ").filter(Boolean);
    claimButtons.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
    sourceItems.forEach(function (item) {
      const on = ids.indexOf(item.dataset.source) >= 0;
      item.classList.toggle("supports", on);
      if (on) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
    const evidence = (button.dataset.evidence || "").split(" ").filter(Boolean);
    for (const span of sourceUnits) span.classList.toggle("evidence", evidence.indexOf(span.dataset.row) >= 0);
    if (!claimUnits || !claimUnits[k]) return;
    const row = claimUnits[k];
    let maxAbs = 0;
    for (const span of sourceUnits) maxAbs = Math.max(maxAbs, Math.abs(row[Number(span.dataset.row)] || 0));
    for (const span of sourceUnits) {
      const value = row[Number(span.dataset.row)] || 0;
      const colour = shade(value, maxAbs);
      span.style.backgroundColor = rgb(colour);
      span.style.color = textOn(colour);
      span.dataset.score = String(value);
      span.title = signed(value, 3) + " " + UNIT + " for this claim";
    }
  }

  claimButtons.forEach(function (button, k) {
    button.addEventListener("click", function () { selectClaim(k); });
  });

  buildPrompt();
  buildOutput();
  buildBands();
  bindMatrix();
  bindDownload();
  drawTree();
  setView(-1);
})();
