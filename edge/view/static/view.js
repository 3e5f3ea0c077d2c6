// neurogrip live view: one snapshot per server-sent event (layout: docs/live-view.md). No library, no
// network access beyond this page's own server. Every string from the server goes in as text, never HTML.
(() => {
  'use strict';
  // The token: from the URL once, then kept for this tab only (a reload works) and taken out of the address
  // bar, the history and anything a person might copy or share from them.
  const params = new URLSearchParams(location.search);
  const kept = () => { try { return sessionStorage.getItem('neurogrip-token'); } catch (e) { return null; } };
  const token = params.get('token') || kept() || '';
  if (params.has('token')) {
    try { sessionStorage.setItem('neurogrip-token', token); } catch (e) { /* a reload then needs the URL again */ }
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }
  const $ = (id) => document.getElementById(id);
  // Set by the server in the page: the run has an arm (the e-stop and start are shown from the start,
  // whether or not the event stream ever connects), and when an update is late (VIEW_STALE_S).
  const CONTROLS = document.body.dataset.controls === '1';
  const STALE_MS = Number(document.body.dataset.staleMs) || 3000;
  const COLORS = ['#58a6ff', '#f0883e', '#3fb950', '#d2a8ff', '#ff7b72', '#e3b341', '#79c0ff', '#56d4dd',
                  '#db61a2', '#a5d6ff'];
  const MARK_CLASS = { ok: 'ok', mains: 'warn', flat: 'bad', railed: 'bad', disconnected: 'bad' };
  const view = { latest: null, updates: 0, lastAt: 0, decoded: null, estopped: false };
  window.neurogrip = view; // for the curious, and for the browser test

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function bytes(b64) {
    const s = atob(b64); const a = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
  }
  function fmt(x, d = 2) { return x === null || x === undefined ? '–' : Number(x).toFixed(d); }
  function fit(canvas) {
    const r = window.devicePixelRatio || 1; const w = Math.max(50, canvas.clientWidth);
    const h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * r)) { canvas.width = Math.round(w * r); canvas.height = Math.round(h * r); }
    const ctx = canvas.getContext('2d'); ctx.setTransform(r, 0, 0, r, 0, 0);
    return [ctx, w, h];
  }

  // -- the signal: one row per channel, each scaled to its own range (the label says the range)
  function drawSignal(s) {
    const sig = s.signal; const C = s.channels.length; const canvas = $('signal');
    canvas.style.height = Math.max(120, Math.min(C * 22, 900)) + 'px';
    const [ctx, w, h] = fit(canvas);
    ctx.clearRect(0, 0, w, h);
    const q = sig.n ? new Int16Array(bytes(sig.data).buffer) : new Int16Array(0);
    const rowH = h / C; const left = 118; const n = sig.n;
    ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'middle';
    for (let c = 0; c < C; c++) {
      const y0 = (c + 0.5) * rowH; const mark = (s.quality[c] || {}).mark || 'ok';
      ctx.fillStyle = mark === 'ok' ? '#8b98a5' : (mark === 'mains' ? '#d29922' : '#f85149');
      const range = sig.scale[c] * 32000;
      ctx.fillText(`${s.channels[c]} ${mark === 'ok' ? '' : mark + ' '}±${range < 10 ? range.toFixed(1) : range.toFixed(0)}`, 4, y0);
      if (n < 2) continue;
      ctx.strokeStyle = mark === 'ok' ? COLORS[c % COLORS.length] : ctx.fillStyle; ctx.lineWidth = 1;
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        const x = left + (w - left - 4) * i / (n - 1); const y = y0 - (q[i * C + c] / 32000) * rowH * 0.45;
        if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      }
      ctx.stroke();
    }
    $('signal-title').textContent = `Signal (${s.mode === 'run' ? 'filtered' : 'raw'}, ${fmt(n / sig.fs, 1)} s at ` +
      `${fmt(sig.fs, 0)} Hz for display)`;
    const bad = s.quality.map((x, i) => [s.channels[i], x]).filter(([, x]) => x.mark !== 'ok' || Object.keys(x.counts).length);
    $('faults').textContent = bad.length ? 'Quality: ' + bad.map(([name, x]) =>
      `${name} ${x.mark}` + (Object.keys(x.counts).length ? ` (${Object.entries(x.counts).map(([k, v]) => `${k} ×${v}`).join(', ')})` : '')
    ).join('; ') : 'Quality: every channel ok';
  }

  // -- the model's outputs over time, the thresholds dashed
  function drawOutputs(o) {
    const [ctx, w, h] = fit($('outputs'));
    ctx.clearRect(0, 0, w, h);
    const L = o.labels.length; const n = o.n; const p = n ? bytes(o.data) : new Uint8Array(0);
    const y = (v) => h - 4 - v * (h - 8);
    if (o.thresholds) {
      ctx.setLineDash([4, 4]); ctx.lineWidth = 1;
      o.thresholds.forEach((t, j) => { ctx.strokeStyle = COLORS[j % COLORS.length] + '88'; ctx.beginPath();
        ctx.moveTo(0, y(t)); ctx.lineTo(w, y(t)); ctx.stroke(); });
      ctx.setLineDash([]);
    }
    for (let j = 0; j < L && n > 1; j++) {
      ctx.strokeStyle = COLORS[j % COLORS.length]; ctx.lineWidth = 1.5; ctx.beginPath();
      for (let i = 0; i < n; i++) {
        const x = w * i / (n - 1); const v = p[i * L + j] / 255;
        if (i) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v));
      }
      ctx.stroke();
    }
    $('outputs-card').querySelector('h2').textContent = o.t_span
      ? `Model outputs (last ${n} windows, stream ${fmt(o.t_span[0], 1)}–${fmt(o.t_span[1], 1)} s; thresholds dashed)`
      : 'Model outputs';
    const legend = $('legend');
    if (legend.childElementCount !== L) {
      legend.replaceChildren(...o.labels.map((name, j) => { const s = el('span'); const i = el('i');
        i.style.background = COLORS[j % COLORS.length]; s.append(i, document.createTextNode(name)); return s; }));
    }
  }

  function renderDecisions(list) {
    const body = $('decisions').tBodies[0];
    body.replaceChildren(...list.slice().reverse().map((d) => {
      const tr = el('tr', null, d.action && !d.sent ? 'failed' : d.reason);
      const why = d.detail || d.why_not_sent || '';
      const cmd = d.action ? `${d.action} ${d.sent ? '✓ sent' : '✗ not sent'}` : '';
      [fmt(d.t, 2), d.label || '', cmd, d.reason + (d.n > 1 ? ` ×${d.n}` : ''), why].forEach((x) => tr.append(el('td', x)));
      return tr;
    }));
  }

  function renderRuntime(r) {
    const safe = $('safety');
    safe.className = 'safety ' + (r.safe ? 'safe' : 'ok');
    safe.textContent = r.safe ? `SAFE STATE: ${r.safe_reason}` + (r.holds.length ? ` (held: ${r.holds.join(', ')})` : '')
      : 'in control';
    const rows = [['arm state', r.arm_state || '–'], ['windows', r.windows], ['fired', r.fired],
      ['sent / failed', `${r.sent} / ${r.failed}`], ['deadline misses', r.deadline_misses],
      ['stale dropped', r.dropped_windows], ['safe-state entries', r.safe_state_entries],
      ['faults', Object.entries(r.faults).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'],
      ['signal faults', Object.entries(r.signal_faults).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'],
      ['held back', Object.values(r.held).reduce((a, b) => a + b, 0)]];
    $('counters').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', k), el('dd', v)]));
    view.estopped = r.holds.includes('e-stopped');
    updateStart();
  }

  // Start is offered when the arm is e-stopped, or when its state is not known (no fresh update): the
  // runtime itself refuses a start when there is nothing to start, and a confirmation comes first.
  function fresh() { return view.lastAt && Date.now() - view.lastAt <= STALE_MS; }
  function updateStart() { $('start').disabled = fresh() && !view.estopped; }

  function renderArm(a) {
    const box = $('arm');
    if (!a) { box.replaceChildren(el('div', 'no arm connected (--arm none)', 'muted')); return; }
    const parts = [el('div', `${a.url} · ${a.connected ? 'connected' : 'reconnecting'} · status ${fmt(a.status_age_ms, 0)} ms old`, 'muted')];
    if (a.position_deg) {
      ['gripper', 'lift'].forEach((name, j) => {
        const d = el('div', null, 'joint'); const t = el('div', null, 'track'); const pos = el('div', null, 'pos');
        const tgt = el('div', null, 'tgt');
        pos.style.width = `${Math.max(0, Math.min(100, a.position_deg[j] / 1.8))}%`;
        tgt.style.left = `${Math.max(0, Math.min(100, a.target_deg[j] / 1.8))}%`;
        t.append(pos, tgt);
        d.append(el('div', `${name}: ${fmt(a.position_deg[j], 1)}° → ${fmt(a.target_deg[j], 1)}°`), t);
        parts.push(d);
      });
      const f = el('div');
      (a.faults.length ? a.faults : ['no faults']).forEach((x) => f.append(el('span', x, 'badge ' + (a.faults.length ? 'bad' : 'ok'))));
      parts.push(f, el('div', `last action ${a.last_action || '–'} · ${a.commands_executed} executed · ` +
        `${a.watchdog_trips} watchdog trips · up ${fmt(a.uptime_s, 0)} s`, 'muted'));
    }
    box.replaceChildren(...parts);
  }

  function renderLatency(l) {
    const body = $('latency').tBodies[0];
    body.replaceChildren(...Object.entries(l.stages).map(([k, v]) => {
      const tr = el('tr'); tr.append(el('td', k), el('td', fmt(v.p50, 3), 'num'), el('td', fmt(v.p99, 3), 'num'));
      return tr;
    }));
    $('misses').textContent = `${l.n} windows; ${l.misses || 0} over the ${l.budget_ms} ms budget in the last minute`;
  }

  function renderCue(c) {
    $('cue-text').textContent = c.done ? 'Done' : c.text;
    $('cue-left').textContent = c.done ? '' : `${fmt(c.left_s, 1)} s`;
    $('cue-next').textContent = c.next ? `next: ${c.next}` : 'last cue';
    $('cue-bar').style.width = `${(100 * c.progress).toFixed(1)}%`;
    $('cue-progress').textContent = `cue ${c.index + 1} of ${c.count} · ${fmt(c.elapsed_s, 0)} / ${fmt(c.total_s, 0)} s` +
      (c.stalled ? ' · THE STREAM STALLED: waiting for data' : '');
    $('cue-done').classList.toggle('hidden', !c.done);
    $('cue-done').textContent = c.done || '';
  }

  function render(s) {
    view.latest = s; view.updates += 1; view.lastAt = Date.now();
    const run = s.mode === 'run';
    $('mode').textContent = `${s.mode} · ${s.task}`;
    ['runtime-card', 'latency-card', 'outputs-card', 'decisions-card', 'arm-card'].forEach((id) => $(id).classList.toggle('hidden', !run));
    $('cue').classList.toggle('hidden', !s.cue);
    if (s.cue) renderCue(s.cue);
    if (run && s.runtime && s.runtime.windows !== undefined) { renderRuntime(s.runtime); renderArm(s.arm); }
    if (s.latency) renderLatency(s.latency);
    if (s.outputs) { drawOutputs(s.outputs); renderDecisions(s.decisions); }
    drawSignal(s);
    $('clock').textContent = new Date(s.time * 1000).toLocaleTimeString();
  }

  function setConn(text, cls) { const c = $('conn'); c.textContent = text; c.className = 'pill ' + cls; }

  function connect() {
    const es = new EventSource('/events?token=' + encodeURIComponent(token));
    es.onopen = () => setConn('live', 'live');
    es.onmessage = (e) => { try { render(JSON.parse(e.data)); } catch (err) { setConn('bad update', 'lost'); } };
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) { setConn('reconnecting', 'lost'); return; }
      // refused (every stream taken, or the view stopped): say which, and try again later
      setConn('disconnected', 'lost');
      fetch('/state.json', { headers: { 'X-Neurogrip-Token': token }, cache: 'no-store' })
        .then((r) => (r.ok ? null : r.json().then((b) => b.error || `HTTP ${r.status}`, () => `HTTP ${r.status}`)))
        .then((why) => { setConn(why ? `view stopped: ${why}` : 'no stream free: retrying', 'lost'); if (!why) setTimeout(connect, 5000); })
        .catch(() => setTimeout(connect, 5000));
    };
  }
  setInterval(() => {
    if (view.lastAt && !fresh()) setConn('no update for ' + Math.round((Date.now() - view.lastAt) / 1000) + ' s', 'wait');
    if (CONTROLS) updateStart();
  }, 1000);

  async function act(action) {
    const msg = $('action-msg');
    msg.textContent = `${action}…`;
    try {
      const r = await fetch('/api/' + action, { method: 'POST', headers: { 'X-Neurogrip-Token': token }, cache: 'no-store' });
      const body = await r.json().catch(() => ({}));
      msg.textContent = r.ok ? body.detail : `${action} refused (${r.status}): ${body.error || r.statusText}`;
    } catch (err) { msg.textContent = `${action} failed: ${err}`; }
  }
  $('controls').classList.toggle('hidden', !CONTROLS);
  if (CONTROLS) updateStart();
  $('estop').addEventListener('click', () => act('estop'));
  $('start').addEventListener('click', () => $('confirm').classList.remove('hidden'));
  $('cancel-start').addEventListener('click', () => $('confirm').classList.add('hidden'));
  $('confirm-start').addEventListener('click', () => { $('confirm').classList.add('hidden'); act('start'); });
  window.addEventListener('resize', () => view.latest && render(view.latest));
  connect();
})();
