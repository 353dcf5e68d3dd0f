(function () {
  'use strict';
  var body = document.body;
  function report(text) {
    var prev = body.getAttribute('data-errors') || '';
    body.setAttribute('data-errors', prev ? prev + ' | ' + text : text);
  }
  (window.attnErrors || []).forEach(report);
  try {
    main();
  } catch (e) {
    report(String(e && e.message ? e.message : e));
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v, digits) {
    return (typeof v === 'number' && isFinite(v)) ? v.toFixed(digits) : '–';
  }
  function short(text, n) {
    return text.length > n ? text.slice(0, n - 1) + '…' : text;
  }

  function main() {
    var D = JSON.parse(document.getElementById('attn-data').textContent);
    var T = D.tokens.length, L = D.layers.length, H = D.heads.length;
    var A = D.attention;
    var dpr = window.devicePixelRatio || 1;
    // (L, H, T, T): layer l, head h, query i, key j.
    function weight(l, h, i, j) {
      var v = A[((l * H + h) * T + i) * T + j];
      return (typeof v === 'number' && isFinite(v)) ? v : 0;
    }
    function hue(h) { return Math.round((210 + h * 360 / Math.max(H, 1)) % 360); }
    function color(h, alpha) {
      return 'hsla(' + hue(h) + ',72%,42%,' + alpha + ')';
    }
    var stats = {};
    D.stats.forEach(function (s) { stats[s.layer + ':' + s.head] = s; });
    var layerStats = {};
    D.layerStats.forEach(function (s) { layerStats[s.layer] = s; });
    var masked = {};
    D.masked.forEach(function (m) { masked[m[0] + ':' + m[1]] = true; });
    function isMasked(l, h) {
      return !!(masked[D.layers[l] + ':' + D.heads[h]] ||
                masked[D.layers[l] + ':-1']);
    }
    var labels = D.tokens.map(function (t, i) {
      var n = 0;
      D.tokens.forEach(function (u) { if (u === t) n++; });
      return n > 1 ? t + '@' + i : t;
    });

    var tip = document.getElementById('tip');
    function showTip(text, ev) {
      tip.textContent = text;
      tip.style.display = 'block';
      tip.style.left = (ev.clientX + 14) + 'px';
      tip.style.top = (ev.clientY + 14) + 'px';
    }
    function hideTip() { tip.style.display = 'none'; }

    var state = { layer: 0, on: [], focus: null };
    for (var h0 = 0; h0 < H; h0++) state.on.push(true);

    // ---- (a) head view -------------------------------------------------
    var ROW = 20, LINES = 200;
    var qcol = document.getElementById('qcol');
    var kcol = document.getElementById('kcol');
    var canvas = document.getElementById('lines');
    var qEls = [], kEls = [];
    D.tokens.forEach(function (t, i) {
      [['q', qcol, qEls], ['k', kcol, kEls]].forEach(function (side) {
        var e = el('div', 'tok', t);
        e.title = 'position ' + i;
        e.addEventListener('mouseenter', function () {
          state.focus = { side: side[0], i: i };
          drawLines();
        });
        e.addEventListener('mouseleave', function () {
          state.focus = null;
          drawLines();
        });
        side[1].appendChild(e);
        side[2].push(e);
      });
    });
    canvas.width = LINES * dpr;
    canvas.height = Math.max(1, T * ROW) * dpr;
    canvas.style.width = LINES + 'px';
    canvas.style.height = T * ROW + 'px';

    function drawLines() {
      var ctx = canvas.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, LINES, T * ROW);
      var l = state.layer, f = state.focus;
      var active = [];
      for (var h = 0; h < H; h++) if (state.on[h]) active.push(h);
      var shade = [];
      for (var s = 0; s < T; s++) shade.push(0);
      active.forEach(function (h) {
        ctx.strokeStyle = color(h, 1);
        for (var i = 0; i < T; i++) {
          if (f && f.side === 'q' && i !== f.i) continue;
          for (var j = 0; j < T; j++) {
            if (f && f.side === 'k' && j !== f.i) continue;
            var v = weight(l, h, i, j);
            if (f) shade[f.side === 'q' ? j : i] += v / active.length;
            if (v < 0.01) continue;
            ctx.globalAlpha = Math.min(1, f ? 0.25 + v : v);
            ctx.lineWidth = f ? 1 + 3 * v : 0.5 + 2 * v;
            ctx.beginPath();
            ctx.moveTo(2, (i + 0.5) * ROW);
            ctx.lineTo(LINES - 2, (j + 0.5) * ROW);
            ctx.stroke();
          }
        }
      });
      ctx.globalAlpha = 1;
      for (var t = 0; t < T; t++) {
        var other = f ? (f.side === 'q' ? kEls[t] : qEls[t]) : null;
        qEls[t].style.background = kEls[t].style.background = '';
        qEls[t].style.color = kEls[t].style.color = '';
        if (other) {
          var a = Math.min(1, shade[t]);
          other.style.background = 'rgba(40, 80, 190,' + a.toFixed(3) + ')';
          if (a > 0.5) other.style.color = '#fff';
        }
        qEls[t].classList.toggle('focus', !!f && f.side === 'q' && f.i === t);
        kEls[t].classList.toggle('focus', !!f && f.side === 'k' && f.i === t);
      }
      highlightCards();
    }

    var select = document.getElementById('layer');
    D.layers.forEach(function (layer, l) {
      var ls = layerStats[layer];
      var o = el('option', '', 'layer ' + layer +
                 (ls ? '  (diversity ' + fmt(ls.diversity, 3) + ')' : ''));
      o.value = String(l);
      select.appendChild(o);
    });
    select.addEventListener('change', function () {
      state.layer = Number(select.value);
      refreshToggles();
      drawLines();
    });

    var toggles = document.getElementById('toggles');
    var toggleEls = [];
    D.heads.forEach(function (head, h) {
      var b = el('span', 'toggle', 'h' + head);
      b.style.background = color(h, 1);
      b.title = 'head ' + head + ': click to toggle, double-click to show alone';
      b.addEventListener('click', function () {
        state.on[h] = !state.on[h];
        refreshToggles();
        drawLines();
      });
      b.addEventListener('dblclick', function () { solo(h); });
      toggles.appendChild(b);
      toggleEls.push(b);
    });
    [['all', true], ['none', false]].forEach(function (x) {
      var b = el('span', 'toggle all', x[0]);
      b.addEventListener('click', function () {
        for (var h = 0; h < H; h++) state.on[h] = x[1];
        refreshToggles();
        drawLines();
      });
      toggles.appendChild(b);
    });
    function refreshToggles() {
      toggleEls.forEach(function (b, h) {
        b.classList.toggle('off', !state.on[h]);
        b.classList.toggle('masked', isMasked(state.layer, h));
      });
    }
    function solo(h) {
      for (var k = 0; k < H; k++) state.on[k] = (k === h);
      refreshToggles();
      drawLines();
    }

    // ---- heatmaps --------------------------------------------------------
    // Draws an (n, n) map into `cv`, cells colored from white to `hueValue`
    // scaled to the map's maximum, with the `names` of rows and columns when
    // the cells are big enough; hovering shows "row → column value".
    // Returns the maximum.
    function heat(cv, get, n, hueValue, size, names, maxCell) {
      var cell = Math.max(1, Math.min(maxCell || 14, Math.floor(size / Math.max(n, 1))));
      var ctx = cv.getContext('2d');
      // Labels no taller than a cell, so neighbours never overlap.
      var font = Math.min(10, cell) + 'px ui-monospace, "DejaVu Sans Mono", monospace';
      ctx.font = font;
      var withLabels = cell >= 7;
      var margin = 0;
      var shown = names.map(function (t) { return short(t, 10); });
      if (withLabels) {
        shown.forEach(function (t) {
          margin = Math.max(margin, ctx.measureText(t).width);
        });
        margin = Math.ceil(margin) + 5;
      }
      var px = margin + n * cell;
      cv.width = px * dpr;
      cv.height = px * dpr;
      cv.style.width = px + 'px';
      cv.style.height = px + 'px';
      ctx = cv.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.font = font;
      var max = 0, i, j;
      for (i = 0; i < n; i++) for (j = 0; j < n; j++) max = Math.max(max, get(i, j));
      for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
          var t = max > 0 ? get(i, j) / max : 0;
          ctx.fillStyle = 'hsl(' + hueValue + ',70%,' + (97 - 62 * t).toFixed(1) + '%)';
          ctx.fillRect(margin + j * cell, margin + i * cell, cell, cell);
        }
      }
      if (withLabels) {
        ctx.fillStyle = '#475467';
        ctx.textBaseline = 'middle';
        ctx.textAlign = 'right';
        for (i = 0; i < n; i++) ctx.fillText(shown[i], margin - 4, margin + (i + 0.5) * cell);
        ctx.textAlign = 'left';
        for (j = 0; j < n; j++) {
          ctx.save();
          ctx.translate(margin + (j + 0.5) * cell, margin - 4);
          ctx.rotate(-Math.PI / 2);
          ctx.fillText(shown[j], 0, 0);
          ctx.restore();
        }
      }
      cv.addEventListener('mousemove', function (ev) {
        var r = cv.getBoundingClientRect();
        var qi = Math.floor((ev.clientY - r.top - margin) / cell);
        var kj = Math.floor((ev.clientX - r.left - margin) / cell);
        if (qi < 0 || kj < 0 || qi >= n || kj >= n) { hideTip(); return; }
        showTip(names[qi] + ' → ' + names[kj] + '  ' + get(qi, kj).toFixed(3), ev);
      });
      cv.addEventListener('mouseleave', hideTip);
      return max;
    }

    function bar(name, v, h) {
      var row = el('div', 'bar');
      row.appendChild(el('span', 'name', name));
      var track = el('span', 'track');
      var fill = el('span', 'fill');
      fill.style.display = 'block';
      fill.style.width = (Math.max(0, Math.min(1, v || 0)) * 100).toFixed(1) + '%';
      fill.style.background = color(h, 0.85);
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el('span', 'val', fmt(v, 2)));
      return row;
    }

    var grid = document.getElementById('grid');
    var cards = [];
    var drawn = 0;
    var size = T <= 24 ? 140 : 200;
    for (var l = 0; l < L; l++) {
      var layer = D.layers[l];
      var section = el('section', 'layer');
      var head = el('div', 'layer-head');
      head.appendChild(el('h2', '', 'Layer ' + layer));
      var ls = layerStats[layer];
      if (ls) {
        head.appendChild(el('span', 'sub', 'diversity ' + fmt(ls.diversity, 3) +
            ' nats (mean Jensen–Shannon divergence between its heads)'));
      }
      if (ls && ls.js.length === H * H && H > 1) {
        // Which heads are alike: the (H, H) divergence matrix, hover for
        // the pair.
        var js = el('span', 'js sub');
        var jc = el('canvas');
        js.appendChild(jc);
        js.appendChild(el('span', '', 'JS divergence between heads (hover)'));
        head.appendChild(js);
        heat(jc, (function (m) {
          return function (a, b) { return m[a * H + b] || 0; };
        })(ls.js), H, 25, 64, D.heads.map(function (x) { return 'h' + x; }), 10);
      }
      section.appendChild(head);
      var row = el('div', 'cards');
      for (var h = 0; h < H; h++) {
        var card = el('div', 'card');
        var title = el('div', 'card-title');
        var dot = el('span', 'dot');
        dot.style.background = color(h, 1);
        title.appendChild(dot);
        title.appendChild(el('span', '', 'L' + layer + ' · H' + D.heads[h]));
        if (isMasked(l, h)) {
          card.classList.add('masked');
          var badge = el('span', 'badge', 'masked');
          badge.title = 'switched off by head_mask; the map is as computed before masking';
          title.appendChild(badge);
        }
        card.appendChild(title);
        var cv = el('canvas');
        card.appendChild(cv);
        var max = heat(cv, (function (l, h) {
          return function (i, j) { return weight(l, h, i, j); };
        })(l, h), T, hue(h), size, labels);
        var s = stats[layer + ':' + D.heads[h]];
        var nums = 'max ' + fmt(max, 2);
        if (s) nums = 'entropy ' + fmt(s.entropy, 2) + '  dist ' + fmt(s.distance, 1) + '  ' + nums;
        card.appendChild(el('div', 'nums', nums));
        if (s) {
          [['cls', s.cls], ['sep', s.sep], ['self', s.self], ['prev', s.prev],
           ['next', s.next]].forEach(function (x) {
            card.appendChild(bar(x[0], x[1], h));
          });
        }
        card.addEventListener('click', (function (l, h) {
          return function () {
            state.layer = l;
            select.value = String(l);
            solo(h);
            window.scrollTo(0, 0);
          };
        })(l, h));
        cards.push({ card: card, l: l, h: h });
        row.appendChild(card);
        drawn++;
      }
      section.appendChild(row);
      grid.appendChild(section);
    }
    function highlightCards() {
      cards.forEach(function (c) {
        var on = c.l === state.layer && state.on[c.h];
        c.card.style.outline = on ? '2px solid ' + color(c.h, 1) : 'none';
      });
    }

    // ---- rollout -----------------------------------------------------------
    if (D.rollout && D.rollout.length === T * T) {
      var panel = document.getElementById('rollout');
      panel.style.display = 'block';
      var rc = el('canvas');
      panel.appendChild(rc);
      heat(rc, function (i, j) {
        var v = D.rollout[i * T + j];
        return (typeof v === 'number' && isFinite(v)) ? v : 0;
      }, T, 170, 300, labels);
      body.setAttribute('data-rollout', '1');
    }

    // A view can be linked: page.html#layer=5&heads=0,3&query=9 opens the
    // head view on model layer 5, heads 0 and 3, focused on query token 9.
    var params = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var p = kv.split('=');
      if (p[0]) params[p[0]] = decodeURIComponent(p[1] || '');
    });
    if (params.layer !== undefined) {
      var li = D.layers.indexOf(Number(params.layer));
      if (li >= 0) {
        state.layer = li;
        select.value = String(li);
      }
    }
    if (params.heads) {
      var wanted = params.heads.split(',').map(Number);
      for (var hh = 0; hh < H; hh++) state.on[hh] = wanted.indexOf(D.heads[hh]) >= 0;
    }
    if (params.query !== undefined && params.query !== '') {
      var qi = Number(params.query);
      if (qi >= 0 && qi < T) state.focus = { side: 'q', i: qi };
    }
    refreshToggles();
    drawLines();
    body.setAttribute('data-rendered', String(drawn));
  }
})();
