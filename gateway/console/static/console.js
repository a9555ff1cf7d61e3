// Paygate console: the overview updates itself once a second (no reload), from
// /console/overview.json. A plain module, no build step; pages work without it.

const W = 900, H = 160, PAD = 4;  // charts.py draws the same size

function points(series, key, top) {
  if (series.length < 2) return "";
  const t0 = series[0].t, span = (series[series.length - 1].t - t0) || 1;
  return series.map((s) => {
    const x = PAD + ((s.t - t0) / span) * (W - 2 * PAD);
    const y = H - PAD - (s[key] / top) * (H - 2 * PAD);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
}

function yuan(fen) {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  const whole = Math.floor(abs / 100).toLocaleString("en-US");
  return `${sign}¥${whole}.${String(abs % 100).padStart(2, "0")}`;
}

function show(root, o) {
  const set = (field, text) => {
    for (const el of root.querySelectorAll(`[data-field="${field}"]`)) el.textContent = text;
  };
  set("accepted_per_s", o.accepted_per_s);
  set("finalized_per_s", o.finalized_per_s);
  set("p99_ms", o.p99_ms === null ? "—" : o.p99_ms);
  set("notifications_pending", o.notifications_pending);
  set("notifications_failed", o.notifications_failed);
  set("pool", `${yuan(o.pool_used)} / ${yuan(o.pool_cap)}`);
  set("sim_now", o.sim_now);
  for (const state of ["review", "queued", "sending", "acked", "unknown"]) {
    set(`open.${state}`, o.open[state] || 0);
  }
  for (const b of o.banks) {
    const row = root.querySelector(`#banks tr[data-id="${CSS.escape(b.id)}"]`);
    if (!row) continue;
    row.querySelector('[data-field="breaker"]').textContent = b.breaker;
    row.querySelector('[data-field="in_flight"]').textContent = b.in_flight;
    row.querySelector('[data-field="enabled"]').textContent =
      b.enabled && !o.dispatch_paused ? "on" : "paused";
  }
  const check = o.ledger_check;
  set("ledger_check", check === null ? "never run"
    : `${check.ok ? "OK" : "FAILING: " + check.failing.join(", ")} at ${check.at} by ${check.by}`);
  const chart = root.querySelector("#rate-chart");
  const top = Math.max(1, ...o.series.map((s) => Math.max(s.accepted, s.finalized)));
  chart.querySelector("polyline.accepted").setAttribute("points", points(o.series, "accepted", top));
  chart.querySelector("polyline.finalized").setAttribute("points", points(o.series, "finalized", top));
  chart.querySelector("text.max").textContent = `max ${top}/s`;
}

async function poll(root) {
  try {
    const resp = await fetch(root.dataset.live, { headers: { Accept: "application/json" } });
    if (resp.redirected || resp.status === 403) {
      window.location.assign("/console/login");  // the session ended
      return;
    }
    if (resp.ok) show(root, await resp.json());
  } catch (err) {
    console.warn("overview refresh failed", err);
  }
  setTimeout(() => poll(root), 1000);
}

const live = document.querySelector("[data-live]");
if (live) poll(live);
