/* 先锋 simulator page. Everything shown comes from the event stream (/sim/api/events), which replays the
 * history on connect, so a reload keeps every member's conversation. Sending goes through /sim/api/*,
 * which turns it into the encrypted callback WeCom would send. No build step, no dependencies. */
"use strict";

const $ = (sel) => document.querySelector(sel);
const STORE_KEY = "pioneer.sim.member";

const state = {
  cast: [], byId: {}, groups: [], jobs: [],
  current: null,          // userid of the member being played
  convo: {},              // userid -> conversation items, in order
  unread: {},             // userid -> count of bot messages not seen
  cardDone: {},           // response_code -> label shown instead of the buttons
  cardBody: {},           // response_code -> replacement card body (update_template_card with a card)
  webhooks: [],           // group robot messages and job runs
  groupFilter: "",
  groupsUnread: 0,
  instance: null,
  replayedUntil: 0,       // events up to this id were history when the page connected: never unread
  timeZone: "Asia/Shanghai",  // the bot's configured zone (api/cast); every time on the page is shown in it
  waiting: {},            // userid -> requests in flight
};

/* -- text helpers ------------------------------------------------------------------------------------- */

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function safeUrl(u) {
  return /^(https?:\/\/|\/|api\/)/i.test(u) ? u : "";
}

/* WeCom's markdown subset: # headings, **bold**, [link](url), `code`, > quote, <font color="info|comment|warning">.
 * Everything is escaped first; only these forms become markup. */
function inlineMd(text) {
  const codes = [];
  let s = esc(text).replace(/`([^`]+)`/g, (_, c) => { codes.push(c); return `\u0000${codes.length - 1}\u0000`; });
  s = s.replace(/&lt;font\s+color=(?:&quot;|&#39;)?(info|comment|warning)(?:&quot;|&#39;)?&gt;([\s\S]*?)&lt;\/font&gt;/gi,
    (_, color, inner) => `<span class="md-${color.toLowerCase()}">${inner}</span>`);
  s = s.replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>");
  s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (m, label, url) => {
    const u = safeUrl(url);
    return u ? `<a href="${u}" target="_blank" rel="noopener noreferrer">${label}</a>` : m;
  });
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => `<code>${codes[Number(i)]}</code>`);
}

function markdown(src) {
  const out = [];
  for (const line of String(src ?? "").split(/\r?\n/)) {
    let m;
    if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) out.push(`<div class="md-h md-h${m[1].length}">${inlineMd(m[2])}</div>`);
    else if ((m = /^>\s?(.*)$/.exec(line))) out.push(`<div class="md-quote">${inlineMd(m[1]) || "&nbsp;"}</div>`);
    else if (!line.trim()) out.push('<div class="md-gap"></div>');
    else out.push(`<div>${inlineMd(line)}</div>`);
  }
  return out.join("");
}

function el(tag, cls, html) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (html !== undefined) e.innerHTML = html;
  return e;
}

const PALETTE = ["#3b82c4", "#2f9e6e", "#c27c0e", "#7c5cc4", "#c2410c", "#0e8a9a", "#b23a7a", "#52709a"];
function avatar(name, userid) {
  let h = 0;
  for (const c of userid || name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  const a = el("span", "avatar", esc((name || userid).slice(-2)));
  a.style.background = PALETTE[h % PALETTE.length];
  return a;
}
function botAvatar() {
  const a = el("span", "avatar", "锋");
  a.style.background = "var(--red)";
  a.style.fontSize = "15px";
  return a;
}

/* Times as the bot writes them on its cards: in its configured zone, not the browser's. */
let timeFormat = null;
function parts(t) {
  if (!timeFormat || timeFormat.resolvedOptions().timeZone !== state.timeZone) {
    try {
      timeFormat = new Intl.DateTimeFormat("en-GB", {
        timeZone: state.timeZone, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      });
    } catch (err) {  // an unknown zone name: fall back to the browser's rather than show nothing
      timeFormat = new Intl.DateTimeFormat("en-GB", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    }
  }
  return Object.fromEntries(timeFormat.formatToParts(new Date(t * 1000)).map((p) => [p.type, p.value]));
}

function clock(t) {
  const p = parts(t);
  const today = parts(Date.now() / 1000);
  const hm = `${p.hour}:${p.minute}`;
  return p.month === today.month && p.day === today.day ? hm : `${p.month}-${p.day} ${hm}`;
}

function size(n) {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${Math.round(n / 1024)} KB` : `${n} B`;
}

/* -- the cast ------------------------------------------------------------------------------------------ */

async function loadCast() {
  const resp = await fetch("api/cast");
  const data = await resp.json();
  state.cast = data.members;
  state.byId = Object.fromEntries(data.members.map((m) => [m.userid, m]));
  state.groups = data.groups;
  state.jobs = data.jobs;
  if (data.timezone) state.timeZone = data.timezone;
  renderCast();
  renderChips();
  renderJobs();
  const saved = localStorage.getItem(STORE_KEY);
  if (saved && state.byId[saved] && !state.current) select(saved, { focus: false, show: false });
}

function renderCast() {
  const box = $("#cast");
  const q = $("#filter").value.trim().toLowerCase();
  box.innerHTML = "";
  const branches = [];
  for (const m of state.cast) if (!branches.includes(m.branch)) branches.push(m.branch);
  for (const branch of branches) {
    const people = state.cast.filter((m) => m.branch === branch && matches(m, q));
    if (!people.length) continue;
    box.append(el("div", "branch-title", esc(branch || "未分支部")));
    for (const m of people) box.append(memberRow(m));
  }
}

function matches(m, q) {
  if (!q) return true;
  const hay = [m.name, m.userid, m.team, m.party_group, m.module, m.political_status, ...m.roles.map((r) => r.name)];
  return hay.join(" ").toLowerCase().includes(q);
}

function roleBadges(m) {
  return m.roles.map((r) => `<span class="role r-${esc(r.code)}">${esc(r.name)}</span>`).join("");
}

function memberRow(m) {
  const b = el("button", "member");
  b.type = "button";
  b.dataset.userid = m.userid;
  if (m.userid === state.current) b.setAttribute("aria-current", "true");
  b.append(avatar(m.name, m.userid));
  const who = el("span", "who",
    `<span class="name">${esc(m.name)}</span><span class="roles">${roleBadges(m)}</span>` +
    `<span class="meta">${esc([m.team, m.political_status].filter(Boolean).join(" · "))}</span>`);
  b.append(who);
  const n = state.unread[m.userid] || 0;
  b.append(el("span", "count", n ? String(n) : ""));
  b.addEventListener("click", () => select(m.userid));
  return b;
}

/* -- choosing a member --------------------------------------------------------------------------------- */

function select(userid, { focus = true, show = true } = {}) {
  state.current = userid;
  state.unread[userid] = 0;
  localStorage.setItem(STORE_KEY, userid);
  renderCast();
  renderHead();
  renderConversation();
  updateCounts();
  const input = $("#input");
  input.disabled = false;
  $("#send").disabled = false;
  $("#composer").classList.remove("off");
  if (show) showPane("chat");
  scrollDown();  // after the pane is shown: a hidden pane has no height to scroll
  if (focus) input.focus();
}

function renderHead() {
  const m = state.byId[state.current];
  const head = $("#chat-head");
  head.innerHTML = "";
  if (!m) { head.append(el("span", "hint", "选择一位成员，开始和「先锋」对话")); return; }
  head.append(avatar(m.name, m.userid));
  const unit = [m.branch, m.team, m.party_group, m.module && `${m.module}模块`].filter(Boolean).join(" · ");
  head.append(el("div", "",
    `<div class="title">${esc(m.name)} <span class="roles">${roleBadges(m)}</span></div>` +
    `<div class="sub">${esc([m.userid, m.political_status, unit].filter(Boolean).join(" · "))}</div>`));
}

/* -- the conversation ---------------------------------------------------------------------------------- */

function items(userid) {
  return (state.convo[userid] ||= []);
}

/* `live`: it arrived while the page was open (not replayed history), so it may count as unread. */
function addItem(userid, item, live = true) {
  items(userid).push(item);
  if (userid === state.current) {
    appendItem(item, lastTime(userid, item));
    scrollDown();
  } else if (item.from === "bot" && live) {
    state.unread[userid] = (state.unread[userid] || 0) + 1;
    renderCast();
    updateCounts();
  }
}

function lastTime(userid, item) {
  const list = items(userid);
  const i = list.indexOf(item);
  return i > 0 ? list[i - 1].time : 0;
}

function renderConversation() {
  const box = $("#messages");
  box.innerHTML = "";
  const list = items(state.current);
  if (!list.length) {
    const m = state.byId[state.current];
    box.append(el("div", "empty-chat",
      `你现在是 <b>${esc(m ? m.name : state.current)}</b>。发送 <b>帮助</b> 看看能做什么；` +
      "多行表单的第一行写命令，其余每行写「字段：值」，Shift+Enter 换行。"));
  }
  let prev = 0;
  for (const item of list) { appendItem(item, prev); prev = item.time; }
  if (state.waiting[state.current]) box.append(typing());
  scrollDown();
}

function appendItem(item, prevTime) {
  const box = $("#messages");
  box.querySelector(".empty-chat")?.remove();
  const dots = box.querySelector(".typing");
  if (!prevTime || item.time - prevTime > 300) box.append(el("div", "stamp", clock(item.time)));
  box.append(renderItem(item));
  if (dots) box.append(dots);  // the dots stay last while a reply is awaited
}

function renderItem(item) {
  if (item.kind === "note") {
    const n = el("div", `note${item.error ? " error" : ""}`);
    n.append(el("span", "", esc(item.text)));
    return n;
  }
  const row = el("div", `msg ${item.from}`);
  const m = state.byId[state.current];
  row.append(item.from === "me" ? avatar(m ? m.name : "", state.current) : botAvatar());
  const body = el("div", "body");
  body.append(renderContent(item));
  row.append(body);
  return row;
}

function renderContent(item) {
  switch (item.msgtype) {
    case "text": return el("div", "bubble", esc(item.text));
    case "markdown": return el("div", "bubble md", markdown(item.text));
    case "image": {
      const b = el("div", "bubble");
      if (item.file && item.file.url) b.innerHTML = `<a href="${esc(item.file.url)}" target="_blank"><img alt="图片" src="${esc(item.file.url)}"></a>`;
      else b.textContent = "[图片]";
      return b;
    }
    case "file": case "voice": case "video": return fileLink(item.file);
    case "template_card": return renderCard(item);
    case "textcard": {
      const c = item.body || {};
      return el("div", "card", `<div class="card-inner"><div class="card-title">${esc(c.title)}</div>` +
        `<div class="card-desc">${markdown(c.description)}</div>` +
        (safeUrl(c.url || "") ? `<a href="${esc(c.url)}" target="_blank">${esc(c.btntxt || "详情")}</a>` : "") + "</div>");
    }
    default: return el("div", "bubble", esc(`[${item.msgtype}] ${JSON.stringify(item.body || {})}`));
  }
}

function fileLink(file) {
  const f = file || {};
  const ext = (f.name || "").split(".").pop().slice(0, 4).toUpperCase() || "FILE";
  const a = el("a", "file",
    `<span class="icon">${esc(ext)}</span><span><span class="fname">${esc(f.name || "文件")}</span><br>` +
    `<span class="fsize">${esc(size(f.size || 0))} · 点击下载</span></span>`);
  if (f.url) { a.href = f.url; a.download = f.name || ""; }
  return a;
}

/* -- template cards ------------------------------------------------------------------------------------ */

function renderCard(item) {
  const code = item.response_code || "";
  const card = state.cardBody[code] || item.body || {};
  const wrap = el("div", "card");
  if (code) wrap.dataset.code = code;
  const inner = el("div", "card-inner");
  const parts = [];
  if (card.source && card.source.desc) parts.push(`<div class="card-source">${esc(card.source.desc)}</div>`);
  if (card.main_title) {
    if (card.main_title.title) parts.push(`<div class="card-title">${esc(card.main_title.title)}</div>`);
    if (card.main_title.desc) parts.push(`<div class="card-desc">${esc(card.main_title.desc)}</div>`);
  }
  if (card.emphasis_content) {
    parts.push(`<div class="card-emphasis"><div class="big">${esc(card.emphasis_content.title)}</div>` +
      `<div class="small">${esc(card.emphasis_content.desc)}</div></div>`);
  }
  if (card.quote_area && (card.quote_area.title || card.quote_area.quote_text)) {
    parts.push(`<blockquote class="card-quote">${card.quote_area.title ? `<b>${esc(card.quote_area.title)}</b>\n` : ""}` +
      `${esc(card.quote_area.quote_text)}</blockquote>`);
  }
  if (card.sub_title_text) parts.push(`<div class="card-sub">${esc(card.sub_title_text)}</div>`);
  const rows = card.horizontal_content_list || [];
  if (rows.length) {
    parts.push('<dl class="card-kv">' + rows.map((r) => {
      const value = r.type === 1 && safeUrl(r.url || "") ? `<a href="${esc(r.url)}" target="_blank">${esc(r.value)}</a>` : esc(r.value);
      return `<dt>${esc(r.keyname)}</dt><dd>${value}</dd>`;
    }).join("") + "</dl>");
  }
  const jumps = (card.jump_list || []).filter((j) => safeUrl(j.url || ""));
  if (jumps.length) {
    parts.push('<div class="card-jumps">' + jumps.map((j) => `<a href="${esc(j.url)}" target="_blank">${esc(j.title)}</a>`).join("") + "</div>");
  }
  inner.innerHTML = parts.join("");
  wrap.append(inner);

  const done = code && state.cardDone[code];
  const buttons = card.button_list || [];
  if (done) {
    wrap.append(el("div", "card-done", `<span>${esc(done)}</span>`));
  } else if (card.card_type === "button_interaction" && buttons.length) {
    const bar = el("div", "card-buttons");
    for (const btn of buttons) {
      const b = el("button", `s${btn.style || 1}`, esc(btn.text));
      b.type = "button";
      b.addEventListener("click", () => clickButton(item, card, btn, bar));
      bar.append(b);
    }
    wrap.append(bar);
  } else if (card.card_type && !["text_notice", "news_notice", "button_interaction"].includes(card.card_type)) {
    wrap.append(el("div", "card-unsupported", `（${esc(card.card_type)} 卡片：模拟器只显示内容）`));
  }
  return wrap;
}

function refreshCards(code) {
  for (const node of document.querySelectorAll(`.card[data-code="${CSS.escape(code)}"]`)) {
    const item = items(state.current).find((i) => i.response_code === code);
    if (item) node.replaceWith(renderCard(item));
  }
}

async function clickButton(item, card, btn, bar) {
  for (const b of bar.querySelectorAll("button")) b.disabled = true;
  const userid = state.current;
  const ok = await post("api/click", {
    userid, event_key: btn.key, task_id: card.task_id || "", card_type: card.card_type,
    response_code: item.response_code || "", label: btn.text,
  }, userid);
  if (!ok || !state.cardDone[item.response_code]) for (const b of bar.querySelectorAll("button")) b.disabled = false;
}

/* -- sending --------------------------------------------------------------------------------------------- */

async function post(url, body, userid) {
  state.waiting[userid] = (state.waiting[userid] || 0) + 1;
  if (userid === state.current && !$("#messages .typing")) { $("#messages").append(typing()); scrollDown(); }
  try {
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!resp.ok && resp.status !== 502) {
      const detail = await resp.text();
      addItem(userid, { kind: "note", error: true, text: `发送失败：HTTP ${resp.status} ${detail.slice(0, 160)}`, time: Date.now() / 1000 });
    }
    return resp.ok;
  } catch (err) {
    addItem(userid, { kind: "note", error: true, text: `连接不上模拟器：${err}`, time: Date.now() / 1000 });
    return false;
  } finally {
    state.waiting[userid] -= 1;
    if (!state.waiting[userid] && userid === state.current) $("#messages .typing")?.remove();
  }
}

function typing() {
  const row = el("div", "msg bot typing");
  row.append(botAvatar());
  const body = el("div", "body");
  body.append(el("div", "bubble", "···"));
  row.append(body);
  return row;
}

function send() {
  const input = $("#input");
  const text = input.value;
  if (!text.trim() || !state.current) return;
  input.value = "";
  grow();
  post("api/say", { userid: state.current, text }, state.current);
}

function sendImage(file) {
  if (!file || !state.current) return;
  const userid = state.current;
  const reader = new FileReader();
  reader.onload = () => {
    const data = String(reader.result).split(",", 2)[1] || "";
    post("api/image", { userid, data, filename: file.name || "image.png" }, userid);
  };
  reader.readAsDataURL(file);
}

function grow() {
  const input = $("#input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight + 2, 180)}px`;
}

function scrollDown() {
  const box = $("#messages");
  box.scrollTop = box.scrollHeight;
}

/* -- group robots ----------------------------------------------------------------------------------------- */

function renderChips() {
  const box = $("#group-chips");
  box.innerHTML = "";
  for (const g of [{ name: "", label: "全部" }, ...state.groups.map((g) => ({ name: g.name, label: g.name, title: g.description }))]) {
    const b = el("button", "", esc(g.label));
    b.type = "button";
    if (g.title) b.title = g.title;
    b.setAttribute("aria-pressed", String(state.groupFilter === g.name));
    b.addEventListener("click", () => { state.groupFilter = g.name; renderChips(); renderWebhooks(); });
    box.append(b);
  }
}

/* The scheduled jobs, each by what it does (its description in config.yaml), its name second. */
function renderJobs() {
  const box = $("#jobs");
  const list = $("#job-list");
  list.innerHTML = "";
  for (const j of state.jobs) {
    const row = el("li", "job-row");
    row.append(el("div", "job-what",
      `<span class="job-desc">${esc(j.description || j.name)}</span>` +
      (j.description ? `<span class="job-name">${esc(j.name)}</span>` : "")));
    const run = el("button", "", "运行");
    run.type = "button";
    run.dataset.job = j.name;
    run.setAttribute("aria-label", `立即运行 ${j.description || j.name}`);
    run.addEventListener("click", () => runJob(j.name, run));
    row.append(run);
    list.append(row);
  }
  $("#jobs-count").textContent = String(state.jobs.length);
  box.hidden = !state.jobs.length;
}

async function runJob(name, button) {
  button.disabled = true;
  try {
    await fetch(`api/jobs/${encodeURIComponent(name)}`, { method: "POST" });
  } finally {
    button.disabled = false;
  }
}

function renderWebhooks() {
  const box = $("#webhooks");
  box.innerHTML = "";
  const shown = state.webhooks.filter((w) => !state.groupFilter || w.group === state.groupFilter || w.kind === "job");
  if (!shown.length) box.append(el("p", "empty", "群里还没有消息。排行、活动通知和录用稿件会出现在这里。"));
  for (const w of shown) box.append(renderRobot(w));
  box.scrollTop = box.scrollHeight;
}

function renderRobot(w) {
  const card = el("article", `robot${w.kind === "job" ? " job" : ""}`);
  if (w.kind === "job") {
    // Said by what the job does; its name and the scheduler's own note are for developers, so second.
    const job = state.jobs.find((j) => j.name === w.name);
    card.append(el("div", "robot-head", `<span class="group">定时任务</span><span class="job-name">${esc(w.name)}</span><time>${clock(w.time)}</time>`));
    const status = { done: "已运行", failed: "运行失败", skipped: "已跳过" }[w.status] || w.status;
    card.append(el("div", "robot-body",
      `<div>${esc(status)}：${esc(job && job.description ? job.description : w.name)}</div>` +
      (w.detail ? `<div class="job-detail">${esc(w.detail)}</div>` : "")));
    return card;
  }
  card.append(el("div", "robot-head", `<span class="group">${esc(w.group)}</span><span>群机器人</span><time>${clock(w.time)}</time>`));
  const b = w.body || {};
  if (w.msgtype === "markdown" || w.msgtype === "markdown_v2") card.append(el("div", "robot-body md", markdown(b.content)));
  else if (w.msgtype === "text") card.append(el("div", "robot-body text", esc(b.content)));
  else if (w.msgtype === "image") card.append(el("div", "robot-body", `<img alt="图片" style="max-width:100%" src="data:image/png;base64,${esc(b.base64)}">`));
  else if (w.msgtype === "file" || w.msgtype === "voice") { const d = el("div", "robot-body"); d.append(fileLink(b.file)); card.append(d); }
  else if (w.msgtype === "news") card.append(el("div", "robot-body", (b.articles || []).map((a) => `<div><a href="${esc(safeUrl(a.url || ""))}" target="_blank">${esc(a.title)}</a><div class="card-desc">${esc(a.description)}</div></div>`).join("")));
  else if (w.msgtype === "template_card") card.append(renderCard({ body: b }));
  else card.append(el("div", "robot-body text", esc(JSON.stringify(b))));
  return card;
}

/* -- panes (tabs when narrow) ------------------------------------------------------------------------------- */

function showPane(name) {
  $("#layout").dataset.pane = name;
  for (const t of document.querySelectorAll(".tabs button")) t.setAttribute("aria-selected", String(t.dataset.pane === name));
  if (name === "groups") {
    state.groupsUnread = 0;
    updateCounts();
    $("#webhooks").scrollTop = $("#webhooks").scrollHeight;
  }
  if (name === "chat") scrollDown();
}

function narrow() {
  return window.matchMedia("(max-width: 1023px)").matches;
}

function updateCounts() {
  const others = Object.entries(state.unread).filter(([u]) => u !== state.current).reduce((n, [, c]) => n + c, 0);
  $("#members-count").textContent = others ? String(others) : "";
  $("#groups-count").textContent = state.groupsUnread ? String(state.groupsUnread) : "";
}

/* -- the event stream ------------------------------------------------------------------------------------- */

function handle(ev) {
  const t = ev.time;
  const live = ev.id > state.replayedUntil;
  switch (ev.kind) {
    case "user":
      addItem(ev.userid, { from: "me", msgtype: ev.msgtype, text: ev.text, file: ev.file, time: t });
      break;
    case "reply":
      if (ev.replace_button && ev.response_code) {
        state.cardDone[ev.response_code] = ev.replace_button;
        refreshCards(ev.response_code);
      } else if (ev.text) {
        addItem(ev.userid, { from: "bot", msgtype: "text", text: ev.text, time: t }, live);
      }
      break;
    case "app": {
      const users = ev.users.includes("@all") ? state.cast.map((m) => m.userid) : ev.users;
      const text = ev.body && ev.body.content;
      for (const u of users) {
        addItem(u, { from: "bot", msgtype: ev.msgtype, text, body: ev.body, file: ev.file, response_code: ev.response_code, time: t }, live);
      }
      break;
    }
    case "card_update":
      if (ev.card) state.cardBody[ev.response_code] = ev.card;
      if (ev.label) state.cardDone[ev.response_code] = ev.label;
      refreshCards(ev.response_code);
      break;
    case "click":
      addItem(ev.userid, { kind: "note", text: `${state.byId[ev.userid]?.name || ev.userid} 点击了「${ev.label}」`, time: t });
      break;
    case "note":
      addItem(ev.userid, { kind: "note", error: true, text: ev.text, time: t });
      break;
    case "webhook":
    case "job":
      state.webhooks.push(ev);
      if (!state.groupFilter || ev.group === state.groupFilter || ev.kind === "job") {
        const box = $("#webhooks");
        box.querySelector(".empty")?.remove();
        box.append(renderRobot(ev));
        box.scrollTop = box.scrollHeight;
      }
      if (live && narrow() && $("#layout").dataset.pane !== "groups") { state.groupsUnread += 1; updateCounts(); }
      break;
  }
}

function resetConversations() {
  Object.assign(state, { convo: {}, unread: {}, cardDone: {}, cardBody: {}, webhooks: [], groupsUnread: 0 });
  renderWebhooks();
  if (state.current) renderConversation();
  updateCounts();
}

function connect() {
  const conn = $("#conn");
  const source = new EventSource("api/events");
  source.addEventListener("hello", (e) => {
    const hello = JSON.parse(e.data);
    if (state.instance && state.instance !== hello.instance) {  // the bot restarted: start over
      resetConversations();
      loadCast();
    }
    // A first connection (or a restarted bot) replays the history: none of it is news. A reconnection
    // of this page only brings what arrived while it was open, which is.
    state.replayedUntil = state.instance === hello.instance ? 0 : hello.replayed || 0;
    state.instance = hello.instance;
    conn.dataset.state = "live";
    conn.textContent = "已连接";
  });
  source.onmessage = (e) => handle(JSON.parse(e.data));
  source.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "连接中断，正在重连…"; };
}

/* -- wiring ------------------------------------------------------------------------------------------------ */

function wire() {
  $("#composer").classList.add("off");
  $("#composer").addEventListener("submit", (e) => { e.preventDefault(); send(); });
  $("#input").addEventListener("keydown", (e) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate is left alone.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); send(); }
  });
  $("#input").addEventListener("input", grow);
  for (const b of document.querySelectorAll("#quick button")) {
    b.addEventListener("click", () => {
      if (state.current) post("api/say", { userid: state.current, text: b.dataset.text }, state.current);
    });
  }
  $("#image-input").addEventListener("change", (e) => { sendImage(e.target.files[0]); e.target.value = ""; });
  $("#filter").addEventListener("input", renderCast);
  for (const t of document.querySelectorAll(".tabs button")) t.addEventListener("click", () => showPane(t.dataset.pane));
  const wide = window.matchMedia("(min-width: 640px)");
  const placeholder = () => { $("#input").placeholder = wide.matches ? "输入消息，Enter 发送，Shift+Enter 换行" : "输入消息"; };
  wide.addEventListener("change", placeholder);
  placeholder();
  showPane("members");
}

wire();
loadCast().then(connect).catch((err) => {
  $("#conn").dataset.state = "lost";
  $("#conn").textContent = `读取成员失败：${err}`;
});
