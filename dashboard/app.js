// The NetSync dashboard. Plain browser JavaScript, no build step, nothing
// fetched from elsewhere. Everything that comes from slaves (ids, labels,
// peers, details) is written with textContent / createTextNode only: this
// file never assigns HTML.

const SPARK_POINTS = 30;
const FEED_MAX = 200;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  sort: "id",
  order: "asc",
  selector: "",
  q: "",
  offset: 0,
  limit: 500,
  matched: 0,
  /**
   * A cluster's table by id comes page by page: the token and offset of each
   * page shown so far (the first is ""), and the token of the page after this
   * one ("" at the end). Any other sort or a text filter pages by offset.
   */
  tokens: [{ token: "", offset: 0 }],
  next: "",
  shown: 0,
  paged: false,
  /** Server clock minus ours, ms, so ages tick against the master's clock. */
  skew: 0,
  actions: false,
  fetching: false,
  refetch: false,
  /** id -> the row's <tr> and its cells. */
  rows: new Map(),
  /** id -> { pongs, rtts[] }: RTT samples for the sparklines, kept here, not on the master. */
  history: new Map(),
};

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

const fmtMs = (ms) => (ms === null || ms === undefined ? "–" : ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`);
const fmtInt = (n) => n.toLocaleString("en-US");

function fmtAge(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function fmtTime(ms) {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  const time = d.toLocaleTimeString("en-GB", { hour12: false });
  return sameDay ? time : `${d.toISOString().slice(0, 10)} ${time}`;
}

// --- summary, feed, closed -------------------------------------------------

function renderSummary(s) {
  setText($("master-id"), s.cluster ? `${s.master} (cluster of ${s.masters.length})` : s.master);
  if (s.cluster !== (document.body.dataset.cluster === "1")) {
    if (s.cluster) document.body.dataset.cluster = "1";
    else delete document.body.dataset.cluster;
  }
  renderMasters(s);
  setText($("sum-connected"), fmtInt(s.connected));
  setText($("sum-evictions"), `${s.evictionsTruncated ? "≥ " : ""}${fmtInt(s.evictions5m)}`);
  setText($("sum-p50"), fmtMs(s.rttP50));
  setText($("sum-p99"), fmtMs(s.rttP99));
  setText($("sum-heartbeat"), `every ${s.heartbeatInterval} ms, timeout ${s.heartbeatTimeout} ms`);
  state.skew = s.now - Date.now();
  if (s.actions !== state.actions) {
    state.actions = s.actions;
    $("actions").hidden = !s.actions;
  }
  renderClosed(s.closed);
}

/** The masters panel (cluster only): one row each; a master that did not answer says so, its slaves are missing. */
function renderMasters(s) {
  $("masters-panel").hidden = !s.cluster;
  const warning = $("unanswered");
  warning.hidden = s.unanswered.length === 0;
  setText(
    warning,
    s.unanswered.length === 0
      ? ""
      : `No answer from master${s.unanswered.length > 1 ? "s" : ""} ${s.unanswered.join(", ")}: ${s.unanswered.length > 1 ? "their" : "its"} slaves are missing from this page.`,
  );
  const rows = s.masters.map((m) => {
    const tr = el("tr");
    tr.dataset.id = m.id;
    tr.dataset.answered = m.answered ? "1" : "0";
    tr.append(
      el("td", "id", m.self ? `${m.id} (this one)` : m.id),
      el("td", "peer", m.address),
      el("td", "num", fmtInt(m.slavesHeld)),
      el("td", "age", fmtAge(s.now - m.lastHeard)),
      el("td", m.answered ? "status ok" : "status unanswered", m.answered ? "answered" : "no answer"),
    );
    return tr;
  });
  $("master-rows").replaceChildren(...rows);
}

function renderClosed(closed) {
  const body = $("closed-rows");
  const rows = closed.map((c) => {
    const tr = el("tr");
    tr.dataset.id = c.id;
    tr.dataset.reason = c.reason;
    tr.append(
      el("td", "time", fmtTime(c.closedAt)),
      el("td", "id", c.id),
      el("td", `reason ${c.reason}`, c.reason),
      el("td", "details", c.details),
    );
    return tr;
  });
  body.replaceChildren(...rows);
}

function addFeed(events, dropped) {
  const feed = $("feed");
  for (const e of events) {
    const li = el("li", `feed-${e.kind}`);
    li.dataset.kind = e.kind;
    li.dataset.id = e.id;
    li.append(
      el("span", "time", fmtTime(e.at)),
      el("span", `kind ${e.kind}`, e.kind.replace("_", " ")),
      el("span", "id", e.id),
      el("span", "master master-col", e.kind.startsWith("master_") ? "" : `on ${e.master}`),
      el("span", "details", e.details),
    );
    li.dataset.master = e.master;
    feed.prepend(li);
    if (e.kind === "evicted" || e.kind === "disconnected") markGone(e.id, e.kind);
  }
  if (dropped > 0) feed.prepend(el("li", "feed-dropped", `… and ${fmtInt(dropped)} more events`));
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
}

/** A slave that left shows it at once; the next table refresh removes its row. */
function markGone(id, kind) {
  const row = state.rows.get(id);
  if (!row) return;
  row.tr.classList.add("gone");
  row.tr.dataset.status = kind;
  setText(row.lastSeen, kind);
}

// --- the table ---------------------------------------------------------------

function sparkline(values) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 60 16");
  svg.setAttribute("width", "60");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  if (values.length >= 2) {
    const max = Math.max(...values);
    const min = Math.min(...values);
    const span = max - min || 1;
    // Spread over the full width; a full history is SPARK_POINTS samples.
    const step = 60 / (values.length - 1);
    const x0 = 0;
    const points = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(15 - ((v - min) / span) * 14).toFixed(1)}`).join(" ");
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", points);
    svg.append(line);
  }
  return svg;
}

function recordRtt(slave) {
  let h = state.history.get(slave.id);
  if (!h) {
    h = { pongs: -1, rtts: [] };
    state.history.set(slave.id, h);
  }
  if (slave.pongsReceived === h.pongs || slave.rttMs === null) return false;
  h.pongs = slave.pongsReceived;
  h.rtts.push(slave.rttMs);
  if (h.rtts.length > SPARK_POINTS) h.rtts.shift();
  return true;
}

function newRow(id) {
  const tr = el("tr");
  tr.dataset.id = id;
  const cells = {
    tr,
    id: el("td", "id", id),
    master: el("td", "master master-col"),
    labels: el("td", "labels"),
    peer: el("td", "peer"),
    connectedAt: el("td", "time"),
    lastSeen: el("td", "age"),
    rtt: el("td", "rtt"),
    rttText: el("span"),
    pings: el("td", "num"),
    key: { labels: "", peer: "", connectedAt: 0 },
    lastSeenMs: 0,
  };
  cells.rtt.append(cells.rttText, sparkline([]));
  tr.append(cells.id, cells.master, cells.labels, cells.peer, cells.connectedAt, cells.lastSeen, cells.rtt, cells.pings);
  tr.addEventListener("click", () => {
    if (!state.actions) return;
    document.querySelector('input[name="target-kind"][value="to"]').checked = true;
    $("action-target").value = id;
  });
  return cells;
}

function updateRow(row, s) {
  const labels = Object.entries(s.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  if (row.key.labels !== labels) {
    row.key.labels = labels;
    row.labels.replaceChildren(...Object.entries(s.labels).map(([k, v]) => el("span", "chip", `${k}=${v}`)));
  }
  setText(row.peer, s.peer);
  setText(row.master, s.masterId ?? "");
  if (row.key.connectedAt !== s.connectedAt) {
    row.key.connectedAt = s.connectedAt;
    row.connectedAt.textContent = fmtTime(s.connectedAt);
    row.connectedAt.title = new Date(s.connectedAt).toISOString();
  }
  row.lastSeenMs = s.lastSeen;
  if (!row.tr.classList.contains("gone")) setText(row.lastSeen, fmtAge(Date.now() + state.skew - s.lastSeen));
  setText(row.rttText, fmtMs(s.rttMs));
  if (recordRtt(s)) row.rtt.lastChild.replaceWith(sparkline(state.history.get(s.id).rtts));
  setText(row.pings, `${fmtInt(s.pingsSent)} / ${fmtInt(s.pongsReceived)}`);
}

/** Patches the table to `slaves`, in order: rows are reused by id, only changed cells written. */
function renderTable(data) {
  const body = $("slave-rows");
  const seen = new Set();
  let index = 0;
  for (const s of data.slaves) {
    seen.add(s.id);
    let row = state.rows.get(s.id);
    if (!row) {
      row = newRow(s.id);
      state.rows.set(s.id, row);
    }
    row.tr.classList.remove("gone");
    delete row.tr.dataset.status;
    updateRow(row, s);
    const at = body.children[index];
    if (at !== row.tr) body.insertBefore(row.tr, at ?? null);
    index++;
  }
  for (const [id, row] of state.rows) {
    if (seen.has(id)) continue;
    row.tr.remove();
    state.rows.delete(id);
  }
  // Forget RTT history of slaves gone for good (kept while merely off this page).
  if (state.history.size > 4 * state.limit) {
    for (const id of state.history.keys()) if (!seen.has(id)) state.history.delete(id);
  }
  state.matched = data.matched;
  state.paged = data.paged === true;
  state.next = data.nextPageToken ?? "";
  state.shown = data.slaves.length;
  const first = data.slaves.length === 0 ? 0 : data.offset + 1;
  const last = data.offset + data.slaves.length;
  // A page of a cluster's listing with a selector does not count the matches (that would read every slave).
  const of =
    data.matched === null
      ? `${fmtInt(data.total)} connected, matching ${state.selector}`
      : data.matched === data.total
        ? fmtInt(data.total)
        : `${fmtInt(data.matched)} matching (${fmtInt(data.total)} connected)`;
  const partial = data.unanswered.length > 0 ? ` (no answer from ${data.unanswered.join(", ")})` : "";
  setText($("range"), `${fmtInt(first)}–${fmtInt(last)} of ${of}${partial}`);
  $("prev").disabled = state.paged ? state.tokens.length <= 1 : data.offset === 0;
  $("next").disabled = state.paged ? state.next === "" : last >= data.matched;
  $("empty").hidden = data.slaves.length > 0;
}

function tickAges() {
  const now = Date.now() + state.skew;
  for (const row of state.rows.values()) {
    if (!row.tr.classList.contains("gone")) setText(row.lastSeen, fmtAge(now - row.lastSeenMs));
  }
}

/** One fetch at a time; a request made meanwhile runs once after it. */
async function refresh() {
  if (state.fetching) {
    state.refetch = true;
    return;
  }
  state.fetching = true;
  try {
    const params = new URLSearchParams({ sort: state.sort, order: state.order, offset: String(state.offset), limit: String(state.limit) });
    if (state.selector) params.set("selector", state.selector);
    if (state.q) params.set("q", state.q);
    const { token } = state.tokens[state.tokens.length - 1];
    if (token) params.set("after", token);
    const res = await fetch(`api/slaves?${params}`, { cache: "no-store", credentials: "same-origin" });
    const body = await res.json();
    if (!res.ok) {
      setText($("selector-error"), body.error || `HTTP ${res.status}`);
      return;
    }
    setText($("selector-error"), "");
    renderTable(body);
  } catch (err) {
    setText($("selector-error"), String(err));
  } finally {
    state.fetching = false;
    if (state.refetch) {
      state.refetch = false;
      void refresh();
    }
  }
}

// --- live updates --------------------------------------------------------------

function connect() {
  const link = $("link");
  const events = new EventSource("api/events");
  const live = () => {
    link.dataset.state = "live";
    setText(link, "live");
  };
  events.addEventListener("hello", (e) => {
    live();
    renderSummary(JSON.parse(e.data));
    void refresh();
  });
  events.addEventListener("tick", (e) => {
    live();
    renderSummary(JSON.parse(e.data));
    void refresh();
  });
  events.addEventListener("feed", (e) => {
    const { events: list, dropped } = JSON.parse(e.data);
    addFeed(list, dropped);
  });
  events.addEventListener("full", () => {
    events.close();
    link.dataset.state = "down";
    setText(link, "too many viewers; reload later");
  });
  events.addEventListener("error", () => {
    link.dataset.state = events.readyState === EventSource.CLOSED ? "down" : "connecting";
    setText(link, events.readyState === EventSource.CLOSED ? "disconnected (reload)" : "reconnecting…");
  });
}

// --- controls ---------------------------------------------------------------------

/** Back to the first page: a new sort, selector or filter starts the listing again. */
function firstPage() {
  state.offset = 0;
  state.tokens = [{ token: "", offset: 0 }];
  state.next = "";
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function setupControls() {
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.tabIndex = 0;
    const sortBy = () => {
      const key = th.dataset.sort;
      state.order = state.sort === key && state.order === "asc" ? "desc" : "asc";
      state.sort = key;
      firstPage();
      for (const other of document.querySelectorAll("th[data-sort]")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      void refresh();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        sortBy();
      }
    });
  }
  const applySelector = () => {
    const value = $("selector").value.trim();
    if (value === state.selector) return;
    state.selector = value;
    firstPage();
    void refresh();
  };
  $("selector").addEventListener("input", debounce(applySelector, 400));
  $("selector").addEventListener("keydown", (e) => {
    if (e.key === "Enter") applySelector();
  });
  $("filter").addEventListener(
    "input",
    debounce(() => {
      state.q = $("filter").value.trim();
      firstPage();
      void refresh();
    }, 200),
  );
  $("prev").addEventListener("click", () => {
    if (state.paged) {
      if (state.tokens.length > 1) state.tokens.pop();
      state.offset = state.tokens[state.tokens.length - 1].offset;
    } else state.offset = Math.max(0, state.offset - state.limit);
    void refresh();
  });
  $("next").addEventListener("click", () => {
    if (state.paged) {
      if (state.next === "") return;
      state.offset += state.shown;
      state.tokens.push({ token: state.next, offset: state.offset });
    } else if (state.offset + state.limit < state.matched) state.offset += state.limit;
    void refresh();
  });
  for (const radio of document.querySelectorAll('input[name="target-kind"]')) {
    radio.addEventListener("change", () => {
      $("action-target").placeholder = radio.value === "to" ? "slave id (click a row)" : "selector, e.g. role=db (empty: all)";
    });
  }
  $("action-send").addEventListener("click", sendCommand);
}

async function sendCommand() {
  const kind = document.querySelector('input[name="target-kind"]:checked').value;
  const target = $("action-target").value.trim();
  const data = $("action-data").value;
  const result = $("action-result");
  if (kind === "to" && !target) {
    setText(result, "choose a slave (click its row)");
    return;
  }
  const body = kind === "to" ? { to: target, data } : { selector: target, data };
  try {
    const res = await fetch("api/send", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-netsync-action": "1" },
      body: JSON.stringify(body),
    });
    const reply = await res.json();
    setText(result, res.ok ? `sent to ${reply.sent} slave${reply.sent === 1 ? "" : "s"}` : `refused: ${reply.error}`);
  } catch (err) {
    setText(result, `failed: ${err}`);
  }
}

setupControls();
connect();
setInterval(tickAges, 500);
