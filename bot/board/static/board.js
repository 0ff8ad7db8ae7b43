// 党建看板: fetch every panel once, rotate them, and fetch again only the panels the bot says changed
// (server-sent events from ./events). Names and numbers come as data and are put in as text, never HTML.
"use strict";

const state = { panels: [], data: {}, current: 0, rotate: 20, started: 0, timezone: undefined };
const RENDER = {};

function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

function add(parent, ...children) {
  for (const c of children) if (c) parent.appendChild(c);
  return parent;
}

function card(title, note) {
  const c = h("section", "card");
  const head = add(h("h2", "", title));
  if (note) head.appendChild(h("small", "", note));
  c.appendChild(head);
  return c;
}

function changeClass(change) {
  if (!change) return "chg";
  if (change.startsWith("↑")) return "chg up";
  if (change.startsWith("↓")) return "chg down";
  if (change === "新") return "chg new";
  return "chg";
}

function rankRows(rows, options) {
  const list = h("div", "rows");
  if (!rows.length) return add(list, h("div", "empty", "本月还没有积分"));
  for (const r of rows) {
    const row = h("div", "row");
    if (options.mine && r.name === options.mine) row.classList.add("mine");
    const badge = h("div", "rank" + (r.rank <= 3 ? " r" + r.rank : ""), r.rank);
    const name = h("div", "name", r.name);
    if (options.detail && r.detail) name.appendChild(h("small", "", r.detail));
    const pts = add(h("div", "pts", r.points), h("small", "", "分"));
    add(row, badge, name, pts, h("div", changeClass(r.change), r.change));
    row.dataset.key = r.name + ":" + r.points;
    list.appendChild(row);
  }
  return list;
}

RENDER.ranking = (d) => {
  const grid = h("div", "ranking");
  const members = card("个人积分前" + d.members.length + "名", d.period + " · 与上月比");
  members.classList.add("members");
  members.appendChild(rankRows(d.members, { detail: true }));
  const middle = h("div", "stack");
  const teams = card("班组积分", "成员积分合计");
  teams.appendChild(rankRows(d.teams.slice(0, 5), { detail: true }));
  const branches = card("支部排行", d.branches_title.replace("排行", ""));
  branches.appendChild(rankRows(d.branches.slice(0, 4), { mine: d.my_branch }));
  const people = card("本月获得积分", d.period);
  people.classList.add("people");
  people.appendChild(add(h("div", "big", d.people), h("small", "", " 人，继续加油！")));
  add(middle, teams, branches, people);
  const latest = card("最新获得积分", "审核通过即上榜");
  latest.classList.add("latest");
  const entries = (state.data.feed && state.data.feed.data.entries) || [];
  const list = h("div", "rows");
  for (const e of entries.slice(0, 9)) {
    list.appendChild(add(h("div", "line"), h("b", "", e.name), h("span", "", e.what), h("em", "", "+" + e.points)));
  }
  if (!entries.length) list.appendChild(h("div", "empty", "等待第一条成绩"));
  latest.appendChild(list);
  return add(grid, members, middle, latest);
};

function signIns(a) {
  const share = a.expected ? Math.min(100, Math.round((100 * a.present) / a.expected)) : 0;
  const bar = add(h("div", "bar"), h("div"));
  bar.firstChild.style.width = share + "%";
  return { share, bar };
}

RENDER.activities = (d) => {
  const box = h("div", "acts-panel");
  const coming = card("今日与近期活动", "签到人数 / 应到人数");
  if (!d.activities.length) coming.appendChild(h("div", "empty", "近一周没有安排活动"));
  const grid = h("div", "acts");
  for (const a of d.activities) {
    const item = h("div", "card act" + (a.today ? " today" : ""));
    const day = add(h("div", "day"), h("b", "", a.day), h("span", "", a.time));
    const body = h("div");
    const title = h("h3", "", a.name);
    title.appendChild(h("span", "state" + (a.state === "签到中" ? " live" : ""), a.state));
    const count = add(h("div", "count", a.present + " / " + a.expected),
      h("small", "", "  已签到 / 应到" + (a.excused ? "，请假 " + a.excused : "")));
    add(body, title, h("div", "meta", a.type + " · " + a.place + " · " + a.scope), signIns(a).bar, count);
    grid.appendChild(add(item, day, body));
  }
  coming.appendChild(grid);
  box.appendChild(coming);
  if (d.recent.length) {
    const recent = card("近两周活动出勤", "到场 / 应到");
    for (const a of d.recent) {
      const { share, bar } = signIns(a);
      recent.appendChild(add(h("div", "recent"), h("span", "when", a.day), h("span", "what", a.name), bar,
        add(h("span", "fig", a.present + " / " + a.expected), h("small", "", " " + share + "%"))));
    }
    box.appendChild(recent);
  }
  return box;
};

RENDER.skills = (d) => {
  const grid = h("div", "skills");
  const left = card("各工段岗位合格人数", "U/O 级合格人数 / 理想人数");
  const sections = h("div", "sections");
  for (const s of d.sections) {
    const block = add(h("div", "section"), h("b", "", s.name));
    for (const p of s.posts) {
      const cls = p.qualified === 0 ? "none" : p.single ? "single" : p.short ? "short" : "ok";
      const cell = add(h("div", "cell " + cls), h("span", "post", p.post));
      if (p.single) cell.appendChild(h("span", "tag", "单点"));
      if (p.qualified === 0) cell.appendChild(h("span", "tag", "空缺"));
      cell.appendChild(add(h("span", "n", p.qualified), h("small", "", "/" + p.ideal)));
      block.appendChild(cell);
    }
    sections.appendChild(block);
  }
  left.appendChild(sections);
  const right = card("覆盖情况", d.people + " 人");
  const legend = h("div", "legend");
  for (const [cls, text] of [["ok", "达到理想人数"], ["short", "不足理想人数"], ["single", "仅一人合格（单点）"], ["none", "无人合格"]]) {
    legend.appendChild(add(h("div"), h("i", "cell " + cls), document.createTextNode(text)));
  }
  add(right,
    add(h("div", "big", d.covered), h("small", "", " / " + d.posts + " 岗位达标")),
    add(h("div", "big", d.single), h("small", "", " 个单点岗位")),
    add(h("div", "big", d.uncovered), h("small", "", " 个岗位无人合格")),
    legend);
  return add(grid, left, right);
};

RENDER.publicity = (d) => {
  const box = card("宣传稿件录用", d.period + " · 录用 / 定额");
  const list = h("div", "mods");
  for (const m of d.modules) {
    const share = m.quota ? Math.min(100, Math.round((100 * m.accepted) / m.quota)) : 100;
    const bar = add(h("div", "bar" + (m.accepted >= m.quota ? " done" : "")), h("div"));
    bar.firstChild.style.width = share + "%";
    const fig = add(h("div", "fig", m.accepted + (m.accepted >= m.quota ? " ✓" : "")), h("small", "", " / " + m.quota + " 篇"));
    list.appendChild(add(h("div", "mod"), h("div", "label", m.name), bar, fig));
  }
  if (!d.modules.length) list.appendChild(h("div", "empty", "没有配置宣传模块"));
  return add(box, list);
};

RENDER.projects = (d) => {
  const panel = h("div", "projects-panel");
  const stats = h("div", "stats");
  for (const [n, label, cls] of [[d.open, "在办项目", ""], [d.late, "节点逾期", d.late ? "alert" : ""],
    [d.milestones_done, "已完成节点", ""], [d.accepted, "已验收结题", ""]]) {
    stats.appendChild(add(h("div", "card stat " + cls), h("b", "", n), h("span", "", label)));
  }
  const box = card("书记项目进度", "党总支出题 · 支部书记选题 · 项目小组答题");
  add(panel, stats, box);
  if (!d.projects.length) { add(box, h("div", "empty", "暂无在办的书记项目")); return panel; }
  const table = h("table", "projects");
  const head = h("tr");
  for (const t of ["课题", "支部", "负责人", "里程碑", "下一个节点", "状态"]) head.appendChild(h("th", "", t));
  table.appendChild(head);
  for (const p of d.projects) {
    const tr = h("tr");
    let badge;
    if (p.closing) badge = h("span", "badge closing", "待验收");
    else if (p.late) badge = h("span", "badge late", "逾期 " + -p.days + " 天");
    else if (p.days === null) badge = h("span", "badge", "未设节点");
    else if (p.days <= 7) badge = h("span", "badge soon", p.days === 0 ? "今天到期" : "还有 " + p.days + " 天");
    else badge = h("span", "badge", "还有 " + p.days + " 天");
    add(tr, h("td", "topic", p.topic), h("td", "", p.branch), h("td", "", p.leader),
      h("td", "", p.done + " / " + p.total), h("td", "next", p.next ? p.due + " " + p.next : "—"), add(h("td"), badge));
    table.appendChild(tr);
  }
  add(box, table);
  return panel;
};

function renderFeed(d) {
  const track = document.getElementById("feed");
  track.textContent = "";
  track.style.animation = "none";
  if (!d.entries.length) { track.appendChild(h("span", "", "等待第一条成绩")); return; }
  // Twice over, scrolled by half its width: the line rolls on without a gap.
  for (let round = 0; round < 2; round++) {
    for (const e of d.entries) {
      const item = h("span");
      add(item, h("b", "", e.name), document.createTextNode(" · " + e.what + " "), h("em", "", "+" + e.points + " 分"));
      track.appendChild(item);
    }
  }
  void track.offsetWidth;
  track.style.animation = "roll " + Math.max(20, Math.round(track.scrollWidth / 2 / 90)) + "s linear infinite";
}

function show(key) {
  const p = state.data[key];
  if (!p) return;
  if (key === "feed") { renderFeed(p.data); show("ranking"); return; }
  const host = document.getElementById("panel-" + key);
  if (!host || !RENDER[key]) return;
  const before = new Set([...host.querySelectorAll(".row")].map((r) => r.dataset.key));
  host.textContent = "";
  host.appendChild(RENDER[key](p.data));
  if (before.size) {
    for (const row of host.querySelectorAll(".row")) if (!before.has(row.dataset.key)) row.classList.add("bump");
  }
}

function rotating() { return state.panels.filter((p) => p.key !== "feed"); }

function select(index) {
  const list = rotating();
  if (!list.length) return;
  state.current = (index + list.length) % list.length;
  list.forEach((p, i) => {
    document.getElementById("panel-" + p.key).classList.toggle("on", i === state.current);
    const tab = document.getElementById("tab-" + p.key);
    tab.classList.toggle("on", i === state.current);
    if (i === state.current) tab.classList.remove("fresh");
  });
  state.started = Date.now();
}

function build(body) {
  state.rotate = body.rotate_seconds;
  state.timezone = body.timezone;
  document.getElementById("scope").textContent = "先锋 · 党建看板 · " + body.scope;
  state.panels = body.panels.map((p) => ({ key: p.key, title: p.title }));
  const tabs = document.getElementById("tabs");
  const main = document.getElementById("panels");
  tabs.textContent = "";
  main.textContent = "";
  for (const p of rotating()) {
    const tab = h("div", "tab", p.title);
    tab.id = "tab-" + p.key;
    tabs.appendChild(tab);
    const panel = h("div", "panel");
    panel.id = "panel-" + p.key;
    main.appendChild(panel);
  }
  for (const p of body.panels) { state.data[p.key] = p; show(p.key); }
  const wanted = new URLSearchParams(location.search).get("panel");
  const at = rotating().findIndex((p) => p.key === wanted);
  select(at >= 0 ? at : state.current);
}

async function fetchJson(url) {
  const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (resp.status === 403) { notice("看板令牌无效或已更换，请用管理员给出的地址重新打开。"); throw new Error("forbidden"); }
  if (resp.status === 409) { notice(await resp.text()); throw new Error("misconfigured"); }
  if (!resp.ok) throw new Error(url + ": " + resp.status);
  notice("");
  return resp.json();
}

function notice(text) {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.hidden = !text;
}

async function loadAll() { build(await fetchJson("data")); }

async function refresh(keys) {
  for (const key of keys) {
    try {
      state.data[key] = await fetchJson("data/" + encodeURIComponent(key));
      show(key);
      const tab = document.getElementById("tab-" + key);
      if (tab && !tab.classList.contains("on")) tab.classList.add("fresh");
    } catch (err) { console.warn(err); }
  }
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("events");
  source.addEventListener("hello", () => { live.classList.remove("off"); loadAll().catch(console.warn); });
  source.addEventListener("changed", (ev) => { refresh(JSON.parse(ev.data).panels); });
  source.onerror = () => { live.classList.add("off"); };
}

function tick() {
  // The bot's time zone (`timezone` in its config), whatever the screen's computer is set to.
  const parts = {};
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: state.timezone, year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", weekday: "short",
  });
  for (const p of format.formatToParts(new Date())) parts[p.type] = p.value;
  const weekday = "日一二三四五六"[["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday)];
  document.getElementById("clock").textContent = parts.hour + ":" + parts.minute;
  document.getElementById("date").textContent = parts.year + "年" + parts.month + "月" + parts.day + "日 星期" + weekday;
  const share = Math.min(1, (Date.now() - state.started) / (state.rotate * 1000));
  document.getElementById("progress").style.width = (share * 100).toFixed(1) + "%";
  if (share >= 1 && !new URLSearchParams(location.search).get("panel")) select(state.current + 1);
}

tick();
setInterval(tick, 250);
listen();
