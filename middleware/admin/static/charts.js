// blendcache admin UI: draws the page's charts as SVG from /admin/data and refreshes them every
// few seconds. Hand-written, no library, no network but this server (works offline; the page's
// Content-Security-Policy allows scripts from /admin/static only).
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 5000;
  const OUTCOMES = ["semantic-hit", "blend", "miss"];
  const COLORS = { "semantic-hit": "#2b9a66", blend: "#3b6fd8", miss: "#e0803a" };
  const PALETTE = ["#6447c7", "#2b9a66", "#3b6fd8", "#e0803a", "#c2417a", "#1a9aa0", "#8a6d1f"];
  const TIER_COLORS = { memory: "#3b6fd8", disk: "#6447c7", redis: "#c2417a" };
  const PAD = { left: 52, right: 14, top: 26, bottom: 26 };

  function el(tag, attrs, parent, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // Clears the chart and gives it a coordinate system of its size on the page.
  function canvas(svg) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const w = Math.max(svg.clientWidth || 0, 320), h = Math.max(svg.clientHeight || 0, 60);
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    return { w, h, x0: PAD.left, x1: w - PAD.right, y0: h - PAD.bottom, y1: PAD.top };
  }

  function empty(svg, message) {
    const c = canvas(svg);
    el("text", { x: c.w / 2, y: c.h / 2, "text-anchor": "middle", class: "empty" }, svg, message);
  }

  // An axis' top: four ticks of a "nice" step (1, 2, 2.5 or 5 times a power of ten; whole
  // numbers for counts).
  function niceMax(v, whole) {
    if (!(v > 0)) return 4;
    const raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= raw);
    return 4 * (whole ? Math.max(1, Math.ceil(step)) : step);
  }

  function yAxis(svg, c, max, fmt) {
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, y = c.y0 - ((c.y0 - c.y1) * i) / 4;
      el("line", { x1: c.x0, x2: c.x1, y1: y, y2: y, class: i ? "grid-line" : "axis" }, svg);
      el("text", { x: c.x0 - 6, y: y + 4, "text-anchor": "end" }, svg, fmt(v));
    }
  }

  function timeLabel(t) {
    return new Date(t * 1000).toISOString().slice(11, 19);
  }

  function xLabels(svg, c, starts, xOf) {
    const step = Math.max(1, Math.ceil(starts.length / 6));
    starts.forEach((t, i) => {
      if (i % step === 0 || i === starts.length - 1) {
        const anchor = starts.length > 1 && i === 0 ? "start"
          : starts.length > 1 && i === starts.length - 1 ? "end" : "middle";
        el("text", { x: xOf(i), y: c.y0 + 16, "text-anchor": anchor }, svg, timeLabel(t));
      }
    });
  }

  function legend(svg, c, names, colorOf) {
    let x = c.x0;
    names.forEach((name) => {
      el("rect", { x, y: 6, width: 10, height: 10, rx: 2, fill: colorOf(name) }, svg);
      const label = el("text", { x: x + 14, y: 15, class: "legend-label" }, svg, name);
      x += 24 + (label.getComputedTextLength ? label.getComputedTextLength() : name.length * 7);
    });
  }

  const pct = (v) => `${Math.round(v * 100)}%`;
  const count = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  function ms(v) {
    return Math.abs(v) >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
  }
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
  function bytes(v) {
    let i = 0;
    while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return `${i ? v.toFixed(1) : v} ${UNITS[i]}`;
  }
  // A bytes axis' top: nice in the unit of the largest value (MiB ticks, not 76.6 KiB).
  function bytesMax(v) {
    let unit = 1;
    while (v / unit >= 1024 && unit < Math.pow(1024, UNITS.length - 1)) unit *= 1024;
    return niceMax(v / unit) * unit;
  }

  // One line per series over the time buckets; null values leave a gap.
  function lines(svg, starts, series, { max, fmt, colorOf }) {
    const names = Object.keys(series);
    if (!starts.length || !names.length) return empty(svg, "no requests yet");
    const c = canvas(svg);
    const top = max === undefined ? niceMax(Math.max(...names.flatMap((n) => series[n]))) : max;
    const xOf = (i) => (starts.length === 1 ? (c.x0 + c.x1) / 2
      : c.x0 + ((c.x1 - c.x0) * i) / (starts.length - 1));
    const yOf = (v) => c.y0 - ((c.y0 - c.y1) * v) / top;
    yAxis(svg, c, top, fmt);
    xLabels(svg, c, starts, xOf);
    names.forEach((name) => {
      const color = colorOf(name);
      let d = "", pen = "M";
      series[name].forEach((v, i) => {
        if (v === null) { pen = "M"; return; }
        d += `${pen}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)} `;
        pen = "L";
        el("circle", { cx: xOf(i), cy: yOf(v), r: 4, fill: color }, svg);
      });
      if (d) el("path", { d, fill: "none", stroke: color, "stroke-width": 2 }, svg);
      const last = series[name].map((v, i) => [v, i]).filter(([v]) => v !== null).pop();
      if (last) {
        const label = el("text", { x: Math.min(xOf(last[1]) + 7, c.x1 - 2), y: yOf(last[0]) - 7,
                                   "text-anchor": xOf(last[1]) + 7 > c.x1 - 40 ? "end" : "start",
                                   class: "point-label" }, svg, fmt(last[0]));
        label.style.fill = color;  // CSSOM, allowed by the CSP (a style attribute is not)
      }
    });
    legend(svg, c, names, colorOf);
  }

  function stackedBars(svg, starts, series) {
    const names = OUTCOMES.filter((o) => series[o]);
    if (!starts.length) return empty(svg, "no requests yet");
    const c = canvas(svg);
    const totals = starts.map((_, i) => names.reduce((s, n) => s + series[n][i], 0));
    const top = niceMax(Math.max(...totals), true);
    const slot = (c.x1 - c.x0) / starts.length, width = Math.max(2, Math.min(slot * 0.7, 48));
    const xOf = (i) => c.x0 + slot * (i + 0.5);
    yAxis(svg, c, top, count);
    xLabels(svg, c, starts, xOf);
    starts.forEach((_, i) => {
      let y = c.y0;
      names.forEach((name) => {
        const h = ((c.y0 - c.y1) * series[name][i]) / top;
        if (h > 0) {
          el("rect", { x: xOf(i) - width / 2, y: y - h, width, height: h, fill: COLORS[name] },
             svg, undefined).appendChild(titleOf(`${name}: ${series[name][i]}`));
        }
        y -= h;
      });
    });
    legend(svg, c, names, (n) => COLORS[n]);
  }

  function titleOf(text) {
    const t = document.createElementNS(NS, "title");
    t.textContent = text;
    return t;
  }

  // Vertical bars, one per label, with its value printed above.
  function bars(svg, labels, values, { fmt, colorOf, whole }) {
    if (!labels.length) return empty(svg, "no data");
    const c = canvas(svg);
    const top = fmt === bytes ? bytesMax(Math.max(...values)) : niceMax(Math.max(...values), whole);
    const slot = (c.x1 - c.x0) / labels.length, width = Math.min(slot * 0.55, 90);
    yAxis(svg, c, top, fmt);
    labels.forEach((label, i) => {
      const x = c.x0 + slot * (i + 0.5), h = ((c.y0 - c.y1) * values[i]) / top;
      el("rect", { x: x - width / 2, y: c.y0 - h, width, height: Math.max(h, 1), rx: 3,
                   fill: colorOf(label) }, svg);
      el("text", { x, y: c.y0 - h - 5, "text-anchor": "middle", class: "value-label" }, svg,
         fmt(values[i]));
      el("text", { x, y: c.y0 + 16, "text-anchor": "middle" }, svg, label);
    });
  }

  // Horizontal bars (the top reused chunks): label on the left, value at the bar's end.
  function hbars(svg, labels, values, notes) {
    svg.style.height = `${Math.max(labels.length, 3) * 30 + 12}px`;
    if (!labels.length) return empty(svg, "no chunk reused yet");
    const c = canvas(svg);
    const left = 190, top = Math.max(...values, 1), row = 30, height = 18;
    labels.forEach((label, i) => {
      const y = 6 + row * i, w = ((c.x1 - 60 - left) * values[i]) / top;
      el("text", { x: left - 8, y: y + height * 0.75, "text-anchor": "end" }, svg, label);
      el("rect", { x: left, y, width: Math.max(w, 1), height, rx: 3,
                   fill: TIER_COLORS[notes[i]] || PALETTE[0] }, svg);
      el("text", { x: left + w + 6, y: y + height * 0.75, class: "value-label" }, svg,
         `${values[i]} hit${values[i] === 1 ? "" : "s"} · ${notes[i]}`);
    });
  }

  function draw(data) {
    const tl = data.timeline;
    const categories = Object.keys(tl.hit_rate);
    const catColor = (n) => PALETTE[categories.indexOf(n) % PALETTE.length];
    lines(byId("chart-hit-rate"), tl.starts, tl.hit_rate, { max: 1, fmt: pct, colorOf: catColor });
    stackedBars(byId("chart-outcomes"), tl.starts, tl.outcomes);
    const tiers = Object.keys(data.chunk_tiers);
    const tierColor = (n) => TIER_COLORS[n] || PALETTE[0];
    bars(byId("chart-tier-hits"), tiers, tiers.map((t) => data.chunk_tiers[t].hits),
         { fmt: count, colorOf: tierColor, whole: true });
    bars(byId("chart-tier-bytes"), tiers, tiers.map((t) => data.chunk_tiers[t].bytes),
         { fmt: bytes, colorOf: tierColor });
    if (tl.ttft_saved_ms === null) {
      empty(byId("chart-ttft-saved"),
            tl.starts.length ? "no miss measured yet" : "no requests yet");
    } else {
      lines(byId("chart-ttft-saved"), tl.starts, { "TTFT saved": tl.ttft_saved_ms },
            { fmt: ms, colorOf: () => "#6447c7" });
    }
    const outcomes = OUTCOMES.filter((o) => data.ttft.outcomes[o]);
    bars(byId("chart-ttft"), outcomes, outcomes.map((o) => data.ttft.outcomes[o].mean_ttft_ms),
         { fmt: ms, colorOf: (o) => COLORS[o] });
    const top = data.top_chunks;
    hbars(byId("chart-top-chunks"), top.map((ch) => `${ch.key}… (${ch.tokens} tokens)`),
          top.map((ch) => ch.hits), top.map((ch) => ch.tier));
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      cells.forEach((cell) => {
        const td = document.createElement("td");
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
        tr.appendChild(td);
      });
      return tr;
    }));
  }

  function percentText(rate) {
    return rate === null ? "–" : `${(rate * 100).toFixed(1)}%`;
  }

  function outcomeBadge(outcome) {
    const span = document.createElement("span");
    span.className = `outcome ${outcome}`;
    span.textContent = outcome;
    return span;
  }

  function tables(data) {
    for (const tile of data.tiles) {
      const node = document.querySelector(`[data-tile="${tile.id}"]`);
      if (node) {
        node.querySelector(".label").textContent = tile.label;
        node.querySelector(".value").textContent = tile.text;
      }
    }
    fill(byId("categories").tBodies[0], Object.entries(data.categories).map(([name, c]) => [
      name, String(c.requests), ...OUTCOMES.map((o) => String(c.outcomes[o] || 0)),
      percentText(c.hit_rate)]));
    fill(byId("recent").tBodies[0], data.recent.map((r) => [
      r.time, r.tenant, r.category, outcomeBadge(r.outcome),
      r.similarity === null ? "" : r.similarity.toFixed(3),
      r.chunks_total ? `${r.chunks_reused}/${r.chunks_total}` : "", String(r.tokens_recomputed),
      `${r.ttft_ms.toFixed(1)} ms`, `${r.latency_ms.toFixed(1)} ms`]));
    byId("generated").textContent = new Date(data.generated_at * 1000).toISOString()
      .slice(0, 19).replace("T", " ");
  }

  let last = null;
  async function refresh() {
    const live = byId("live");
    try {
      const response = await fetch(`/admin/data${location.search}`, {
        credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 401) { location.assign("/admin/login"); return; }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      last = await response.json();
      tables(last);
      draw(last);
      live.classList.remove("stale");
      document.body.dataset.refreshed = String(last.generated_at);
    } catch (err) {
      live.classList.add("stale");
      live.title = `refresh failed: ${err.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    refresh();
    setInterval(refresh, REFRESH_MS);
    window.addEventListener("resize", () => { if (last) draw(last); });
  });
})();
