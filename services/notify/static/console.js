// The dashboard's script: a file, not an inline <script>, so that the services' CSP
// (shared/security_headers.py) can refuse every inline script. Event handlers are set here
// as properties, never as on* attributes in the HTML.
"use strict";
const T = {
  zh: {title: "风险看板", token: "令牌", connect: "连接", townships: "乡镇", villages: "行政村", filter: "筛选",
       onlyFrozen: "仅显示冻结", trend: "不良率趋势", live: "实时事件", code: "代码", name: "名称",
       township: "乡镇", npl: "不良率", outstanding: "贷款余额", nonPerforming: "不良贷款", state: "状态",
       frozen: "已冻结", halted: "已暂停", normal: "正常", villagesOver: "超标村数", fundBalance: "风险补偿金余额",
       capacity: "放大倍数容量", available: "可用容量", connected: "已连接", disconnected: "连接中断，重试中",
       creditLists: "信用红黑名单", listName: "姓名/名称", listVillage: "行政村代码", search: "搜索",
       redList: "红名单", blackList: "黑名单", repairs: "信用修复决定", kind: "类型", identifier: "证件号码（已脱敏）",
       village: "行政村", cause: "事由", tier: "等级", legalBasis: "依据", decidedBy: "决定机关", listedOn: "列入日期",
       publicationEnds: "公示截止", decision: "决定", reasons: "理由", decidedOn: "决定日期", none: "无",
       household: "农户", business: "经营主体", granted: "准予修复", refused: "不予修复", more: "仅显示前 {n} 条，请缩小搜索范围",
       badVillage: "行政村代码为 1 至 12 位数字", listsUnavailable: "名单暂不可用",
       tokenInUrl: "网址中的令牌未被使用，请在输入框中输入令牌",
       government: "政府", court: "法院", bank: "银行", court_dishonest_debtor: "失信被执行人",
       malicious_debt_evasion: "恶意逃废债务", trustworthy: "守信", minor: "轻微", general: "一般", serious: "严重"},
  en: {title: "Risk dashboard", token: "Token", connect: "Connect", townships: "Townships", villages: "Villages",
       filter: "Filter", onlyFrozen: "Frozen only", trend: "NPL trend", live: "Live events", code: "Code",
       name: "Name", township: "Township", npl: "NPL ratio", outstanding: "Outstanding",
       nonPerforming: "Non-performing", state: "State", frozen: "frozen", halted: "halted", normal: "normal",
       villagesOver: "Villages over 3%", fundBalance: "Risk fund balance", capacity: "Fund capacity",
       available: "Capacity available", connected: "connected", disconnected: "disconnected, retrying",
       creditLists: "Credit lists", listName: "Name", listVillage: "Village code", search: "Search",
       redList: "Red list", blackList: "Black list", repairs: "Credit repair decisions", kind: "Kind",
       identifier: "ID (masked)", village: "Village", cause: "Cause", tier: "Tier", legalBasis: "Legal basis",
       decidedBy: "Decided by", listedOn: "Listed on", publicationEnds: "Published until", decision: "Decision",
       reasons: "Reasons", decidedOn: "Decided on", none: "none", household: "household", business: "business",
       granted: "granted", refused: "refused", more: "showing the first {n} only: narrow the search",
       badVillage: "a village code is 1 to 12 digits", listsUnavailable: "lists unavailable",
       tokenInUrl: "a token in the URL is not used: type it in the box",
       court_dishonest_debtor: "dishonest judgment debtor", malicious_debt_evasion: "malicious debt evasion",
       trustworthy: "trustworthy", minor: "minor", general: "general", serious: "serious"},
};
let lang = "zh", token = "", data = {townships: [], villages: [], fund: null};
let sort = {key: "npl_ratio", desc: true}, chart = null, lastEventId = 0;
let credit = {lists: [], repairs: []}, creditLimit = 100;
const $ = (id) => document.getElementById(id);
// Own keys only: codes from the API (kinds, decisions, roles) are looked up here too.
const t = (k) => (Object.hasOwn(T[lang], k) ? T[lang][k] : k);
// Names come from the registry (typed by people): escape before they go into HTML.
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (r) => (Number(r) * 100).toFixed(2) + "%";

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  render();
}

async function api(path) {
  const r = await fetch(path, {headers: {Authorization: "Bearer " + token}});
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

async function refresh() {
  data = await api("/v1/dashboard/overview");
  render();
}

function render() {
  fillVillageCodes();
  const f = data.fund;
  $("fund").textContent = f ? `${t("fundBalance")}: ${f.balance}  ${t("capacity")}: ${f.capacity}  ` +
    `${t("available")}: ${f.available}` : "";
  const tn = Object.fromEntries(data.townships.map((x) => [x.code, x.name]));
  const th = $("townships");
  th.tHead.innerHTML = `<tr><th class=text>${t("code")}</th><th class=text>${t("name")}</th><th>${t("npl")}</th>` +
    `<th>${t("outstanding")}</th><th>${t("villagesOver")}</th><th class=text>${t("state")}</th></tr>`;
  th.tBodies[0].innerHTML = "";
  for (const x of data.townships) {
    const tr = th.tBodies[0].insertRow();
    tr.className = x.halted ? "halted" : "";
    tr.dataset.code = x.code;
    tr.innerHTML = `<td class=text>${esc(x.code)}</td><td class=text>${esc(x.name)}</td><td>${pct(x.npl_ratio)}</td>` +
      `<td>${x.outstanding}</td><td>${x.villages_over_threshold}/${x.villages}</td>` +
      `<td class=text>${x.halted ? `<span class=badge>${t("halted")}</span>` : t("normal")}</td>`;
    tr.onclick = () => trend("townships", x.code, x.name);
  }
  const cols = [["code", "code", "text"], ["name", "name", "text"], ["township_code", "township", "text"],
                ["npl_ratio", "npl", ""], ["outstanding", "outstanding", ""],
                ["non_performing", "nonPerforming", ""], ["frozen", "state", "text"]];
  const vt = $("villages");
  vt.tHead.innerHTML = "<tr>" + cols.map(([k, l, c]) =>
    `<th class="${c}" data-key="${k}">${t(l)}${sort.key === k ? (sort.desc ? " ▼" : " ▲") : ""}</th>`).join("") + "</tr>";
  vt.tHead.querySelectorAll("th").forEach((h) => { h.onclick = () => {
    sort = {key: h.dataset.key, desc: sort.key === h.dataset.key ? !sort.desc : true}; render(); }; });
  const q = $("filter").value.trim();
  let rows = data.villages.filter((v) => (!q || v.code.includes(q) || v.name.includes(q)) &&
                                         (!$("onlyFrozen").checked || v.frozen));
  const num = (k) => ["npl_ratio", "outstanding", "non_performing"].includes(k);
  rows.sort((a, b) => {
    const x = num(sort.key) ? Number(a[sort.key]) : String(a[sort.key]);
    const y = num(sort.key) ? Number(b[sort.key]) : String(b[sort.key]);
    return (x < y ? -1 : x > y ? 1 : 0) * (sort.desc ? -1 : 1);
  });
  vt.tBodies[0].innerHTML = "";
  for (const v of rows) {
    const tr = vt.tBodies[0].insertRow();
    tr.className = v.frozen ? "frozen" : "";
    tr.dataset.code = v.code;
    tr.innerHTML = `<td class=text>${esc(v.code)}</td><td class=text>${esc(v.name)}</td>` +
      `<td class=text>${esc(tn[v.township_code] || v.township_code)}</td><td>${pct(v.npl_ratio)}</td>` +
      `<td>${v.outstanding}</td><td>${v.non_performing}</td>` +
      `<td class="text state">${v.frozen ? `<span class=badge>${t("frozen")}</span>` : t("normal")}</td>`;
    tr.onclick = () => trend("villages", v.code, v.name);
  }
  renderLists();  // its village column names the villages just drawn
}

// --- credit lists (red, black, repairs) ---
// Names and reasons are typed by people and shown to anyone: every cell is set with
// textContent, never innerHTML, so no name can become markup. Identifiers arrive masked
// from risk's public API; the page has no full ID number to show.
function fillVillageCodes() {
  const dl = $("villageCodes");
  dl.replaceChildren(...data.villages.map((v) => {
    const o = document.createElement("option");
    o.value = v.code;
    o.label = v.name;
    return o;
  }));
}

function fillTable(table, cols, rows) {
  const hr = document.createElement("tr");
  for (const [, label] of cols) {
    const th = document.createElement("th");
    th.className = "text";
    th.textContent = t(label);
    hr.appendChild(th);
  }
  table.tHead.replaceChildren(hr);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const row of rows) {
    const tr = body.insertRow();
    tr.dataset.entry = row.entry_id;
    for (const [key] of cols) {
      const td = tr.insertCell();
      td.className = key;
      td.textContent = cellText(key, row[key]);
    }
  }
  if (!rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = cols.length;
    td.className = "empty note";
    td.textContent = t("none");
  }
}

function cellText(key, value) {
  if (value === null || value === undefined || value === "") return "-";
  if (["subject_kind", "decision", "decided_by_role", "cause", "tier"].includes(key)) return t(value);
  if (key === "village_code") {
    const v = data.villages.find((x) => x.code === value);
    return v ? `${v.name} (${value})` : String(value);
  }
  if (Array.isArray(value)) return value.join("; ");
  return String(value);
}

const LIST_COLS = [["name", "name"], ["subject_kind", "kind"], ["identifier_masked", "identifier"],
                   ["village_code", "village"], ["cause", "cause"], ["legal_basis", "legalBasis"],
                   ["decided_by_role", "decidedBy"], ["listed_on", "listedOn"],
                   ["publication_ends_on", "publicationEnds"]];
const BLACK_COLS = [...LIST_COLS.slice(0, 5), ["tier", "tier"], ...LIST_COLS.slice(5)];
const REPAIR_COLS = [["name", "name"], ["subject_kind", "kind"], ["identifier_masked", "identifier"],
                     ["village_code", "village"], ["decision", "decision"], ["reasons", "reasons"],
                     ["decided_by_role", "decidedBy"], ["decided_on", "decidedOn"]];

function renderLists() {
  fillTable($("redList"), LIST_COLS, credit.lists.filter((e) => e.list === "red"));
  fillTable($("blackList"), BLACK_COLS, credit.lists.filter((e) => e.list === "black"));
  fillTable($("repairs"), REPAIR_COLS, credit.repairs);
  const full = credit.lists.length >= creditLimit || credit.repairs.length >= creditLimit;
  $("listStatus").textContent = full ? t("more").replace("{n}", creditLimit) : "";
}

async function loadLists() {
  const q = new URLSearchParams({limit: creditLimit});
  const name = $("listName").value.trim(), village = $("listVillage").value.trim();
  if (village && !/^[0-9]{1,12}$/.test(village)) { $("listStatus").textContent = t("badVillage"); return; }
  if (name) q.set("name", name);
  if (village) q.set("village_code", village);
  try {
    credit = await api("/v1/dashboard/credit-lists?" + q);
  } catch (e) {
    credit = {lists: [], repairs: []};
    renderLists();
    $("listStatus").textContent = `${t("listsUnavailable")} (${e.message})`;
    return;
  }
  renderLists();
}

async function trend(kind, code, name) {
  const days = await api(`/v1/dashboard/${kind}/${code}/history`);
  $("trendOf").textContent = `${name} (${code})`;
  const xs = days.map((d) => Date.parse(d.business_date + "T00:00:00Z") / 1000);
  const ys = days.map((d) => Number(d.npl_ratio) * 100);
  if (chart) chart.destroy();
  chart = new uPlot({width: 640, height: 240, series: [{}, {label: t("npl") + " %", stroke: "#b00020"}],
                     scales: {x: {time: true}}}, [xs, ys], $("chart"));
}

// SSE through fetch (EventSource cannot send the Authorization header); resumes after the
// last id it saw, as EventSource would with Last-Event-ID.
async function stream() {
  for (;;) {
    try {
      const r = await fetch("/v1/stream?last_event_id=" + lastEventId,
                            {headers: {Authorization: "Bearer " + token}});
      if (!r.ok) throw new Error("stream " + r.status);
      $("status").textContent = t("connected");
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split("\n")) {
            const j = line.indexOf(": ");
            if (j > 0) ev[line.slice(0, j)] = line.slice(j + 2);
          }
          if (ev.data) onEvent(ev);
        }
      }
    } catch (e) { /* reconnect below */ }
    $("status").textContent = t("disconnected");
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

let pending = null, listsStale = false;
function onEvent(ev) {
  lastEventId = Number(ev.id);
  const env = JSON.parse(ev.data);
  const line = document.createElement("div");
  line.textContent = `${env.occurred_at} ${env.type} ${env.key}`;
  $("live").prepend(line);
  if (env.type.startsWith("risk.")) {  // coalesce bursts of events into one refresh
    clearTimeout(pending);
    listsStale ||= /^risk\.(subject|repair)\./.test(env.type);
    pending = setTimeout(() => {
      refresh().catch(() => {});
      if (listsStale) { listsStale = false; loadLists(); }
    }, 200);
  }
}

async function connect() {
  token = $("token").value.trim();
  if (!token) return;
  sessionStorage.setItem("vcredit-token", token);
  // The lists are their own call: a token that may read them but not the aggregates (or a
  // risk slow on one) still gets them.
  loadLists();
  await refresh();
  stream();
}

$("lang").onclick = () => { lang = lang === "zh" ? "en" : "zh"; applyLang(); };
$("connect").onclick = () => connect().catch((e) => { $("status").textContent = String(e); });
$("filter").oninput = render;
$("onlyFrozen").onchange = render;
$("listSearch").onsubmit = (e) => { e.preventDefault(); if (token) loadLists(); };
$("token").onkeydown = (e) => { if (e.key === "Enter") $("connect").click(); };
// A token is typed into the box, never put in a URL: a URL is kept in the browser's history,
// copied, shared on screen. One in an old /#token= link is wiped from the address bar unused.
if (/(^|[#&])token=/.test(location.hash)) {
  history.replaceState(null, "", location.pathname);
  $("status").textContent = t("tokenInUrl");
}
$("token").value = sessionStorage.getItem("vcredit-token") || "";
applyLang();
if ($("token").value) connect().catch((e) => { $("status").textContent = String(e); });
