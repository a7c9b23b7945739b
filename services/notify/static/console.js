// The government console's script (issue 26): a file, not an inline <script>, so that the
// services' CSP (shared/security_headers.py) can refuse every inline script. Handlers are set
// here as properties, never as on* attributes. Everything typed by people or read from the
// APIs goes into the page with textContent (el() below), never as markup.
"use strict";

// --- words, both ways -------------------------------------------------------------------
const T = {
  zh: {
    title: "金融扶贫监管台", skip: "跳到正文", token: "令牌", connect: "连接", overview: "概况", townships: "乡镇",
    bulletins: "通报", decisions: "决定", titles: "信用评定", creditLists: "红黑名单", reports: "报表",
    live: "实时事件", latestEvents: "最新事件", asOf: "数据截至营业日 {d}", yuan: "元",
    publicNote: "公众视图：仅显示公开的汇总数据、公告、名单和通报。",
    connected: "已连接，实时更新", publicView: "公众视图，每 {n} 秒刷新", invalidToken: "令牌无效",
    disconnected: "连接中断，重试中", loading: "加载中…", failed: "加载失败：{e}", none: "无",
    tokenInUrl: "网址中的令牌未被使用，请在输入框中输入令牌", needToken: "请输入令牌并连接",
    // overview figures
    households_registered: "登记农户", households_rated: "已评级农户", households_certified: "已认定信用户",
    credit_household_coverage: "信用户覆盖率", coverage_points: "覆盖率得分（满分 3 分）",
    credit_lines: "授信户数", credit_limit: "授信总额", loans_outstanding: "在贷笔数",
    principal_outstanding: "贷款余额", district_npl_ratio: "全区不良率", npl_threshold: "冻结线",
    villages_frozen: "冻结村数", townships_halted: "暂停乡镇数", fund_balance: "风险补偿金余额",
    fund_capacity: "放大容量", fund_used: "已用容量", fund_used_share: "容量使用率",
    losses_loans: "本年核销笔数", losses_total: "本年损失", subsidy_accrued_unclaimed: "已计提未申报贴息",
    subsidy_claimed_unpaid: "已申报未拨付贴息", subsidy_claims: "本年贴息申报笔数",
    subsidy_claims_claimed: "本年申报贴息", subsidy_claims_paid: "本年已拨付贴息",
    groupHouseholds: "农户与信用户", groupCredit: "授信与贷款", groupRisk: "风险", groupFund: "风险补偿金",
    groupLosses: "本年损失", groupSubsidy: "贴息",
    indicators: "信用户覆盖与不良率指标", name: "名称", code: "代码", households: "农户数",
    ratedA: "A 级及以上", coverage: "覆盖率", points: "得分", npl: "不良率", outstanding: "贷款余额",
    nonPerforming: "不良贷款", villagesOver: "超线村数", state: "状态", frozen: "已冻结", halted: "已暂停",
    normal: "正常", district: "全区", fund: "风险补偿金", balance: "余额", capacity: "放大容量",
    used: "已用", available: "可用", leverage: "放大倍数", losses: "本年损失分担",
    party: "承担方", share: "分担额", recovered: "追回", net: "净损失", mutual_guarantee: "互助担保金",
    government: "政府（风险补偿金）", bank: "银行", insurer: "保险公司", subsidy: "贴息",
    total: "合计",
    // township and village
    township: "乡镇", village: "行政村", legend: "颜色：红色 = 不良率超过 {thr}（冻结线）；黄色 = 超过 {green}；绿色 = 不超过 {green}",
    band_red: "超线", band_amber: "接近", band_green: "正常", trend: "不良率趋势", threshold: "冻结线",
    villagesCount: "{n} 个村，{over} 个超线", manualFrozen: "人工冻结", manualUnfrozen: "人工解冻",
    frozenSince: "冻结起始日", overrideReason: "人工决定理由", borrowers: "借款人",
    purpose: "查询事由", showBorrowers: "查看借款人", purposeNote: "每次查看均记入审计日志。",
    subject: "借款人（已脱敏）", subjectKind: "类型", status: "状态", classification: "五级分类",
    daysPastDue: "逾期天数", principal: "本金", disbursedOn: "发放日",
    household: "农户", business: "经营主体", active: "在贷", repaid: "已结清", written_off: "已核销",
    normal_c: "正常", special_mention: "关注", substandard: "次级", doubtful: "可疑", loss: "损失",
    // decisions
    kind: "类型", decidedBy: "决定方", businessDate: "营业日", decidedAt: "决定时间", reason: "理由",
    how: "方式", automatic: "自动", manual: "人工", newer: "较新", older: "较早", pageN: "第 {n} 页",
    village_frozen: "冻结村", village_unfrozen: "解冻村", township_halted: "暂停乡镇", township_resumed: "恢复乡镇",
    autoOver: "不良率 {npl} 超过 {thr}", autoBack: "不良率 {npl} 回落至 {thr} 以内",
    // bulletins, notices, titles
    notices: "公告", bulletinOf: "{d} {t}：{k}", rating_notice: "评级公示", village_frozen_n: "村冻结",
    title_awarded: "获评", title_revoked: "撤销", noticeEnds: "公示截止 {d}",
    credit_village: "信用村", credit_township: "信用乡镇", credit_household: "信用户", credit_community: "信用社区",
    // lists
    listName: "姓名/名称", listVillage: "行政村代码", search: "搜索", redList: "红名单", blackList: "黑名单",
    repairs: "信用修复决定", identifier: "证件号码（已脱敏）", cause: "事由", tier: "等级", legalBasis: "依据",
    listedOn: "列入日期", publicationEnds: "公示截止", decision: "决定", reasons: "理由", decidedOn: "决定日期",
    granted: "准予修复", refused: "不予修复", more: "仅显示前 {n} 条，请缩小搜索范围",
    badVillage: "行政村代码为 1 至 12 位数字", listsUnavailable: "名单暂不可用", court: "法院",
    court_dishonest_debtor: "失信被执行人", malicious_debt_evasion: "恶意逃废债务", trustworthy: "守信",
    minor: "轻微", general: "一般", serious: "严重",
    // reports
    month: "月份", downloadXlsx: "下载 Excel", downloadPdf: "下载 PDF", downloaded: "已下载 {f}",
    // event sentences
    ev_frozen: "{v} 已冻结：不良率 {npl} > {thr}", ev_frozen_manual: "{v} 已由 {by} 人工冻结：{reason}",
    ev_unfrozen: "{v} 已解冻：不良率 {npl} ≤ {thr}", ev_unfrozen_manual: "{v} 已由 {by} 人工解冻：{reason}",
    ev_halted: "{t} 暂停新增贷款：{over}/{n} 个村不良率超过 {thr}", ev_resumed: "{t} 恢复新增贷款",
    ev_fund: "风险补偿金余额 {balance}，放大容量 {capacity}（{cause}）", opening: "开立", top_up: "补充",
    recovery: "追回", ev_title: "{p} 获评{k}（{y} 年）", ev_title_revoked: "{p} 被撤销{k}（{y} 年）",
    ev_bulletin: "发布通报：{t} {k}", ev_date: "营业日 {closed} 日终完成，进入 {d}",
    ev_notice: "评级公示：{h} 评为 {g} 级，授信 {l}，公示至 {e}", ev_notice_end: "评级公示结束：{o}",
    certified: "已认定", superseded: "已更新", rejected: "已拒绝",
    ev_township: "新增乡镇 {n}（{c}）", ev_township_renamed: "乡镇 {c} 更名为 {n}",
    ev_village: "新增行政村 {n}（{c}）", ev_village_renamed: "行政村 {c} 更名为 {n}",
    ev_community: "新增社区 {n}（{c}）",
  },
  en: {
    title: "Rural credit console", skip: "Skip to content", token: "Token", connect: "Connect",
    overview: "Overview", townships: "Townships", bulletins: "Bulletins", decisions: "Decisions",
    titles: "Credit titles", creditLists: "Credit lists", reports: "Reports", live: "Live events",
    latestEvents: "Latest events", asOf: "As of business date {d}", yuan: "yuan",
    publicNote: "Public view: published aggregates, notices, lists and bulletins only.",
    connected: "connected, live", publicView: "public view, refreshed every {n} s", invalidToken: "invalid token",
    disconnected: "disconnected, retrying", loading: "loading…", failed: "could not load: {e}", none: "none",
    tokenInUrl: "a token in the URL is not used: type it in the box", needToken: "type a token and connect",
    households_registered: "Households registered", households_rated: "Households rated",
    households_certified: "Credit households certified", credit_household_coverage: "Credit-household coverage",
    coverage_points: "Coverage points (of 3)", credit_lines: "Credit lines", credit_limit: "Credit granted",
    loans_outstanding: "Loans outstanding", principal_outstanding: "Principal outstanding",
    district_npl_ratio: "District NPL ratio", npl_threshold: "Freeze line", villages_frozen: "Villages frozen",
    townships_halted: "Townships halted", fund_balance: "Risk fund balance", fund_capacity: "Fund capacity",
    fund_used: "Capacity used", fund_used_share: "Share of capacity used", losses_loans: "Loans written off this year",
    losses_total: "Losses this year", subsidy_accrued_unclaimed: "Subsidy accrued, not claimed",
    subsidy_claimed_unpaid: "Subsidy claimed, not paid", subsidy_claims: "Subsidy claims this year",
    subsidy_claims_claimed: "Subsidy claimed this year", subsidy_claims_paid: "Subsidy paid this year",
    groupHouseholds: "Households", groupCredit: "Credit and loans", groupRisk: "Risk", groupFund: "Risk fund",
    groupLosses: "Losses this year", groupSubsidy: "Interest subsidy",
    indicators: "Coverage and NPL indicators", name: "Name", code: "Code", households: "Households",
    ratedA: "Rated A or better", coverage: "Coverage", points: "Points", npl: "NPL ratio", outstanding: "Outstanding",
    nonPerforming: "Non-performing", villagesOver: "Villages over the line", state: "State", frozen: "frozen",
    halted: "halted", normal: "normal", district: "District", fund: "Risk fund", balance: "Balance",
    capacity: "Capacity", used: "Used", available: "Available", leverage: "Leverage", losses: "Losses this year by party",
    party: "Party", share: "Share", recovered: "Recovered", net: "Net loss", mutual_guarantee: "Mutual guarantee fund",
    government: "Government (risk fund)", bank: "Bank", insurer: "Insurer", subsidy: "Interest subsidy",
    total: "Total",
    township: "Township", village: "Village",
    legend: "Colours: red = NPL over {thr} (the freeze line); amber = over {green}; green = {green} or less",
    band_red: "over", band_amber: "near", band_green: "fine", trend: "NPL trend", threshold: "Freeze line",
    villagesCount: "{n} villages, {over} over the line", manualFrozen: "frozen by hand", manualUnfrozen: "unfrozen by hand",
    frozenSince: "Frozen since", overrideReason: "Reason for the manual decision", borrowers: "Borrowers",
    purpose: "Purpose of this query", showBorrowers: "Show borrowers", purposeNote: "Every view is recorded in the audit log.",
    subject: "Borrower (masked)", subjectKind: "Kind", status: "Status", classification: "Classification",
    daysPastDue: "Days past due", principal: "Principal", disbursedOn: "Disbursed on",
    household: "household", business: "business", active: "active", repaid: "repaid", written_off: "written off",
    normal_c: "normal", special_mention: "special mention", substandard: "substandard", doubtful: "doubtful", loss: "loss",
    kind: "Kind", decidedBy: "Decided by", businessDate: "Business date", decidedAt: "Decided at", reason: "Reason",
    how: "How", automatic: "automatic", manual: "manual", newer: "Newer", older: "Older", pageN: "page {n}",
    village_frozen: "village frozen", village_unfrozen: "village unfrozen", township_halted: "township halted",
    township_resumed: "township resumed", autoOver: "NPL {npl} over {thr}", autoBack: "NPL {npl} back within {thr}",
    notices: "Notices", bulletinOf: "{d} {t}: {k}", rating_notice: "rating notice", village_frozen_n: "village frozen",
    title_awarded: "title awarded", title_revoked: "title revoked", noticeEnds: "notice until {d}",
    credit_village: "Credit village", credit_township: "Credit township", credit_household: "Credit household",
    credit_community: "Credit community",
    listName: "Name", listVillage: "Village code", search: "Search", redList: "Red list", blackList: "Black list",
    repairs: "Credit repair decisions", identifier: "ID (masked)", cause: "Cause", tier: "Tier",
    legalBasis: "Legal basis", listedOn: "Listed on", publicationEnds: "Published until", decision: "Decision",
    reasons: "Reasons", decidedOn: "Decided on", granted: "granted", refused: "refused",
    more: "showing the first {n} only: narrow the search", badVillage: "a village code is 1 to 12 digits",
    listsUnavailable: "lists unavailable", court: "court", court_dishonest_debtor: "dishonest judgment debtor",
    malicious_debt_evasion: "malicious debt evasion", trustworthy: "trustworthy", minor: "minor", general: "general",
    serious: "serious",
    month: "Month", downloadXlsx: "Download Excel", downloadPdf: "Download PDF", downloaded: "downloaded {f}",
    ev_frozen: "{v} frozen: NPL {npl} > {thr}", ev_frozen_manual: "{v} frozen by {by}: {reason}",
    ev_unfrozen: "{v} unfrozen: NPL {npl} ≤ {thr}", ev_unfrozen_manual: "{v} unfrozen by {by}: {reason}",
    ev_halted: "{t} halted: {over} of {n} villages over {thr}", ev_resumed: "{t} resumed lending",
    ev_fund: "Risk fund balance {balance}, capacity {capacity} ({cause})", opening: "opening", top_up: "top-up",
    recovery: "recovery", ev_title: "{p} awarded {k} ({y})", ev_title_revoked: "{p} lost {k} ({y})",
    ev_bulletin: "Bulletin issued: {t} {k}", ev_date: "Business day {closed} closed; now {d}",
    ev_notice: "Rating notice: {h} rated {g}, limit {l}, until {e}", ev_notice_end: "Rating notice ended: {o}",
    certified: "certified", superseded: "superseded", rejected: "rejected",
    ev_township: "Township {n} ({c}) registered", ev_township_renamed: "Township {c} renamed {n}",
    ev_village: "Village {n} ({c}) registered", ev_village_renamed: "Village {c} renamed {n}",
    ev_community: "Community {n} ({c}) registered",
  },
};

const POLL_SECONDS = 30;  // the public view has no event stream: it reloads on this period
const PAGE = 20;          // decisions per page
let lang = localStorage.getItem("vcredit-lang") === "en" ? "en" : "zh";
let token = "", me = null, overview = null, board = null, lastEventId = 0;
let events = [], credit = {lists: [], repairs: []}, creditLimit = 100, decisionOffset = 0;
let charts = {}, pending = null, poller = null;
const cache = {};  // the current view's data, by view name: redrawn on a language switch

const $ = (id) => document.getElementById(id);
// Own keys only: codes from the API (kinds, decisions, roles) are looked up here too.
const t = (k, vars = {}) => {
  const s = Object.hasOwn(T[lang], k) ? T[lang][k] : k;
  return s.replace(/\{(\w+)\}/g, (_, v) => (Object.hasOwn(vars, v) ? String(vars[v]) : `{${v}}`));
};
const may = (scope) => Boolean(me && me.scopes.includes(scope));

// A new element with text (never markup) and attributes; children appended.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// --- numbers: exact, from the APIs' decimal strings (never through a float) --------------
function grouped(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
// A decimal string's sign, whole part and fraction, as text; null for a missing value.
function parts(value) {
  if (value === null || value === undefined || value === "") return null;
  const str = String(value);
  const sign = str.startsWith("-") ? "-" : "";
  const [whole, fraction = ""] = str.slice(sign.length).split(".");
  return {sign, whole, fraction};
}
// "1234567.89" -> "1,234,567.89 元" (yuan in English)
function money(s) {
  const p = parts(s);
  if (!p) return "-";
  return `${p.sign}${grouped(p.whole)}.${(p.fraction + "00").slice(0, Math.max(2, p.fraction.length))} ${t("yuan")}`;
}
// "0.1966" -> "19.66%": the decimal point moved two places, as text.
function pct(r, places = 2) {
  const p = parts(r);
  if (!p) return "-";
  const digits = p.fraction + "0".repeat(2 + places);
  const whole = String(BigInt(p.whole + digits.slice(0, 2)));
  return `${p.sign}${whole}${places ? "." + digits.slice(2, 2 + places) : ""}%`;
}
// The threshold as people say it: "3%", "2.5%".
function pctShort(r) {
  return pct(r, 4).replace(/\.?0+%$/, "%");
}
const count = (n) => grouped(String(n));
function figureText(f) {
  if (f.unit === "yuan") return money(f.value);
  if (f.unit === "ratio") return pct(f.value);
  if (f.unit === "count") return count(f.value);
  return String(f.value);
}
function localTime(iso) {
  if (!iso) return "-";
  return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB",
                                 {dateStyle: "medium", timeStyle: "medium"}).format(new Date(iso));
}

// --- the APIs ---------------------------------------------------------------------------
class HttpError extends Error {
  constructor(status, body) {
    super(`${status} ${body && body.code ? body.code : ""}`.trim());
    this.status = status;
  }
}
async function call(path, headers = {}) {
  const r = await fetch(path, {headers: {Authorization: "Bearer " + token, ...headers}});
  if (!r.ok) throw new HttpError(r.status, await r.json().catch(() => null));
  return r;
}
const api = async (path, headers) => (await call(path, headers)).json();

function names() {
  const out = {};
  if (board) {
    for (const x of board.townships) out[x.code] = x.name;
    for (const x of board.villages) out[x.code] = x.name;
  }
  return out;
}
const placeName = (code) => names()[code] || code;
const threshold = () => (overview ? overview.figures.npl_threshold.value : "0.0300");

// --- the overview -----------------------------------------------------------------------
const GROUPS = [
  ["groupHouseholds", ["households_registered", "households_rated", "households_certified",
                       "credit_household_coverage", "coverage_points"]],
  ["groupCredit", ["credit_lines", "credit_limit", "loans_outstanding", "principal_outstanding"]],
  ["groupRisk", ["district_npl_ratio", "npl_threshold", "villages_frozen", "townships_halted"]],
  ["groupFund", ["fund_balance", "fund_capacity", "fund_used", "fund_used_share"]],
  ["groupLosses", ["losses_loans", "losses_total"]],
  ["groupSubsidy", ["subsidy_accrued_unclaimed", "subsidy_claimed_unpaid", "subsidy_claims",
                    "subsidy_claims_claimed", "subsidy_claims_paid"]],
];
const PARTIES = ["mutual_guarantee", "government", "bank", "insurer"];

async function loadOverview() {
  // Risk's aggregates first: the names every view uses, even if another source is down.
  board = await api("/v1/dashboard/overview");
  fillVillageCodes();
  overview = await api(may("ledger:read") ? "/v1/console/overview" : "/v1/console/public");
  $("asOf").textContent = t("asOf", {d: overview.business_date});
}

function drawOverview() {
  if (!overview || !board) return;
  $("asOf").textContent = t("asOf", {d: overview.business_date});
  $("publicNote").hidden = may("ledger:read");
  const fig = overview.figures;
  const groups = [];
  for (const [group, keys] of GROUPS) {
    const shown = keys.filter((k) => Object.hasOwn(fig, k));
    if (!shown.length) continue;
    groups.push(el("section", {class: "group"}, el("h3", {text: t(group)}),
      el("ul", {}, ...shown.map((k) => el("li", {},
        el("a", {href: fig[k].link, class: "figure", "data-key": k, title: fig[k].source},
          el("span", {class: "label", text: t(k)}),
          el("span", {class: "value", "data-value": fig[k].value, text: figureText(fig[k])})))))));
  }
  $("figures").replaceChildren(...groups);
  drawIndicators();
  drawFund();
  drawLosses();
  drawSubsidy();
  drawEvents();
}

function table(id, head, rows, empty = true) {
  const tb = $(id);
  tb.tHead.replaceChildren(el("tr", {}, ...head.map(([label, cls]) => el("th", {scope: "col", class: cls, text: label}))));
  const body = tb.tBodies[0];
  body.replaceChildren(...rows);
  if (!rows.length && empty) {
    body.append(el("tr", {}, el("td", {colspan: head.length, class: "note empty", text: t("none")})));
  }
}

function drawIndicators() {
  const ind = board.indicators;
  const row = (x, link) => el("tr", {"data-code": x.code},
    el("th", {scope: "row", class: "text"}, link ? el("a", {href: `#township/${x.code}`, text: x.name}) : x.name),
    el("td", {text: count(x.households)}), el("td", {text: count(x.rated_a_or_better)}),
    el("td", {text: pct(x.coverage)}), el("td", {text: x.coverage_points}), el("td", {text: money(x.outstanding)}),
    el("td", {text: pct(x.npl_ratio)}), el("td", {text: `${x.villages_over_threshold}/${x.villages}`}));
  table("indicatorTable",
        [[t("name"), "text"], [t("households")], [t("ratedA")], [t("coverage")], [t("points")], [t("outstanding")],
         [t("npl")], [t("villagesOver")]],
        [...ind.townships.map((x) => row(x, true)), row({...ind.district, name: t("district")}, false)]);
}

function pairs(rows) {
  return el("dl", {class: "pairs"}, ...rows.flatMap(([k, v, key]) =>
    [el("dt", {text: k}), el("dd", {text: v, "data-key": key})]));
}

function drawFund() {
  const f = board.fund;
  $("fund").replaceChildren(el("h3", {text: t("fund")}), pairs([
    [t("balance"), money(f.balance), "balance"], [t("leverage"), `× ${f.leverage}`, "leverage"],
    [t("capacity"), money(f.capacity), "capacity"], [t("used"), money(f.outstanding), "outstanding"],
    [t("available"), money(f.available), "available"]]));
}

function drawLosses() {
  const fig = overview.figures;
  const box = $("losses");
  box.hidden = !Object.hasOwn(fig, "losses_total");
  if (box.hidden) return;
  const rows = PARTIES.map((p) => el("tr", {"data-party": p}, el("th", {scope: "row", class: "text", text: t(p)}),
    el("td", {text: money(fig[`losses_${p}`].value)}), el("td", {text: money(fig[`losses_${p}_recovered`].value)}),
    el("td", {text: money(fig[`losses_${p}_net`].value)})));
  rows.push(el("tr", {"data-party": "total"}, el("th", {scope: "row", class: "text", text: t("total")}),
    el("td", {text: money(fig.losses_total.value)}), el("td"), el("td")));
  const tb = el("table", {id: "lossTable"}, el("thead"), el("tbody"));
  box.replaceChildren(el("h3", {text: `${t("losses")} (${overview.year})`}), el("div", {class: "scroll"}, tb));
  table("lossTable", [[t("party"), "text"], [t("share")], [t("recovered")], [t("net")]], rows);
}

function drawSubsidy() {
  const fig = overview.figures;
  const box = $("subsidy");
  box.hidden = !Object.hasOwn(fig, "subsidy_claims");
  if (box.hidden) return;
  const keys = GROUPS.find(([g]) => g === "groupSubsidy")[1];
  box.replaceChildren(el("h3", {text: t("subsidy")}), pairs(keys.map((k) => [t(k), figureText(fig[k]), k])));
}

// --- townships and villages -------------------------------------------------------------
function drawTownships() {
  if (!board) return;
  const rows = board.townships.map((x) => el("tr", {"data-code": x.code, class: x.halted ? "halted" : null},
    el("th", {scope: "row", class: "text"}, el("a", {href: `#township/${x.code}`, text: x.name})),
    el("td", {class: "text", text: x.code}), el("td", {text: pct(x.npl_ratio)}), el("td", {text: money(x.outstanding)}),
    el("td", {text: `${x.villages_over_threshold}/${x.villages}`}),
    el("td", {class: "text", text: x.halted ? t("halted") : t("normal")})));
  table("townshipTable", [[t("name"), "text"], [t("code"), "text"], [t("npl")], [t("outstanding")],
                          [t("villagesOver")], [t("state"), "text"]], rows);
}

async function loadTownship(code) {
  cache.township = {
    drill: await api(`/v1/console/townships/${encodeURIComponent(code)}`),
    history: await api(`/v1/dashboard/townships/${encodeURIComponent(code)}/history`),
  };
}

function drawTownship() {
  const {drill, history} = cache.township;
  const tw = drill.township;
  $("townshipTitle").textContent = `${tw.name} (${tw.code})${tw.halted ? " · " + t("halted") : ""}`;
  $("townshipFigures").textContent = `${t("npl")} ${pct(tw.npl_ratio)} · ${t("outstanding")} ${money(tw.outstanding)}` +
    ` · ${t("villagesCount", {n: tw.villages, over: tw.villages_over_threshold})}`;
  $("legend").textContent = t("legend", {thr: pctShort(drill.bands.threshold), green: pctShort(drill.bands.green_at_most)});
  $("heat").replaceChildren(...drill.villages.map((v) => el("li", {},
    el("a", {href: `#village/${v.code}`, class: `cell band-${v.band}${v.frozen ? " frozen" : ""}`,
             "data-code": v.code, "data-band": v.band},
      el("span", {class: "name", text: v.name}),
      el("span", {class: "npl", text: pct(v.npl_ratio)}),
      el("span", {class: "state", text: v.frozen ? t("frozen") : t(`band_${v.band}`)})))));
  chart("townshipChart", history, drill.bands.threshold);
}

async function loadVillage(code) {
  cache.village = await api(`/v1/console/villages/${encodeURIComponent(code)}`);
  cache.borrowers = null;
}

function decisionReason(d) {
  if (d.manual) return d.reason;
  const npl = d.figures && d.figures.npl_ratio;
  if (!npl) return d.reason;
  return t(d.kind === "village_unfrozen" || d.kind === "township_resumed" ? "autoBack" : "autoOver",
           {npl: pct(npl), thr: pctShort(threshold())});
}

function decisionRows(list) {
  return list.map((d) => el("tr", {class: d.manual ? "manual" : null, "data-kind": d.kind},
    el("td", {class: "text", text: d.business_date || "-"}), el("td", {class: "text", text: localTime(d.decided_at)}),
    el("td", {class: "text", text: t(d.kind)}), el("td", {class: "text"},
      el("a", {href: d.kind.startsWith("village") ? `#village/${d.code}` : `#township/${d.code}`, text: placeName(d.code)})),
    el("td", {class: "text", text: d.manual ? t("manual") : t("automatic")}),
    el("td", {class: "text reason", text: decisionReason(d)}), el("td", {class: "text", text: d.decided_by})));
}
const DECISION_HEAD = () => [[t("businessDate"), "text"], [t("decidedAt"), "text"], [t("kind"), "text"],
                             [t("village") + "/" + t("township"), "text"], [t("how"), "text"],
                             [t("reason"), "text"], [t("decidedBy"), "text"]];

function drawVillage() {
  const d = cache.village;
  const v = d.village;
  $("villageTitle").replaceChildren(`${v.name} (${v.code}) · `,
    el("a", {href: `#township/${d.township.code}`, text: d.township.name}));
  const f = d.figures;
  const state = v.frozen ? `${t("frozen")}${v.manual_override ? " (" + t("manualFrozen") + ")" : ""}` : t("normal");
  $("villageFigures").replaceChildren(...pairs([
    [t("npl"), pct(v.npl_ratio), "npl_ratio"], [t("state"), state, "state"],
    [t("outstanding"), money(v.outstanding), "outstanding"], [t("nonPerforming"), money(v.non_performing), "non_performing"],
    [t("households_registered"), count(f.households_registered), "households_registered"],
    [t("households_rated"), count(f.households_rated), "households_rated"],
    [t("households_certified"), count(f.households_certified), "households_certified"],
    [t("credit_lines"), count(f.credit_lines), "credit_lines"],
    [t("loans_outstanding"), count(f.loans_outstanding), "loans_outstanding"],
    [t("principal_outstanding"), money(f.principal_outstanding), "principal_outstanding"],
    ...(v.frozen_since ? [[t("frozenSince"), v.frozen_since, "frozen_since"]] : []),
    ...(v.override_reason ? [[t("overrideReason"), v.override_reason, "override_reason"]] : []),
  ]).children);
  $("villageFigures").className = `pairs band-${v.band}`;
  chart("villageChart", d.trend.days, d.trend.threshold);
  table("villageDecisions", DECISION_HEAD(), decisionRows(d.decisions));
  $("borrowerForm").hidden = !may("lending:read");
  drawBorrowers();
}

function drawBorrowers() {
  const rows = (cache.borrowers || []).map((b) => el("tr", {},
    el("td", {class: "text mono", text: b.subject}), el("td", {class: "text", text: t(b.subject_kind)}),
    el("td", {class: "text", text: t(b.status)}),
    el("td", {class: "text", text: t(b.classification === "normal" ? "normal_c" : b.classification)}),
    el("td", {text: String(b.days_past_due)}), el("td", {text: money(b.principal)}),
    el("td", {text: money(b.principal_outstanding)}), el("td", {class: "text", text: b.disbursed_on})));
  table("borrowers", [[t("subject"), "text"], [t("subjectKind"), "text"], [t("status"), "text"],
                      [t("classification"), "text"], [t("daysPastDue")], [t("principal")], [t("outstanding")],
                      [t("disbursedOn"), "text"]], rows, cache.borrowers !== null);
}

async function loadBorrowers(code) {
  // Percent-encoded UTF-8: a header is ASCII, a purpose is usually Chinese (shared/audit.py).
  const purpose = encodeURIComponent($("purpose").value.trim());
  // The first 500 loans (loans' largest page): a village has a few dozen borrowers.
  cache.borrowers = await api(`/v1/console/villages/${encodeURIComponent(code)}/borrowers?limit=500`,
                              {"X-Query-Purpose": purpose});
  drawBorrowers();
}

// The NPL trend in per cent with the freeze line drawn from risk's own threshold.
function chart(id, days, line) {
  if (charts[id]) charts[id].destroy();
  const box = $(id);
  const xs = days.map((d) => Date.parse(d.business_date + "T00:00:00Z") / 1000);
  const ys = days.map((d) => Number(d.npl_ratio) * 100);  // drawing only: the figures are shown as text
  const limit = xs.map(() => Number(line) * 100);
  const width = Math.max(280, Math.min(800, box.parentElement.clientWidth - 8));
  charts[id] = new uPlot({
    width, height: 240,
    series: [{}, {label: t("npl") + " %", stroke: "#b00020", width: 2},
             {label: `${t("threshold")} ${pctShort(line)}`, stroke: "#555", dash: [6, 4], width: 1}],
    scales: {x: {time: true}}, axes: [{}, {values: (u, v) => v.map((x) => x + "%")}],
  }, [xs, ys, limit], box);
  box.dataset.threshold = line;
  box.dataset.points = String(days.length);
}

// --- bulletins, notices, decisions, titles ----------------------------------------------
async function loadBulletins() {
  cache.bulletins = {bulletins: await api("/v1/bulletins?limit=50"), notices: await api("/v1/notices?limit=50")};
}

function drawBulletins() {
  const {bulletins, notices} = cache.bulletins;
  $("bulletinList").replaceChildren(...(bulletins.length ? bulletins.map((b) => el("details", {"data-id": b.bulletin_id},
    el("summary", {text: t("bulletinOf", {d: b.business_date || "-", t: b.township_name || b.township_code, k: t(b.kind)})}),
    el("p", {class: "bulletin", lang: lang === "zh" ? "zh-CN" : "en", text: lang === "zh" ? b.text_zh : b.text_en}),
    el("p", {class: "note", text: localTime(b.issued_at)}))) : [el("p", {class: "note", text: t("none")})]));
  $("noticeList").replaceChildren(...notices.map((n) => el("li", {},
    el("time", {text: localTime(n.occurred_at)}), " ",
    el("span", {text: `${t(n.kind === "village_frozen" ? "village_frozen_n" : n.kind)} · ` +
      `${placeName(n.village_code || n.township_code || "")}` + (n.notice_ends ? ` · ${t("noticeEnds", {d: n.notice_ends})}` : "")}))));
}

async function loadDecisions() {
  cache.decisions = await api(`/v1/console/decisions?limit=${PAGE}&offset=${decisionOffset}`);
}

function drawDecisions() {
  table("decisionTable", DECISION_HEAD(), decisionRows(cache.decisions));
  $("page").textContent = t("pageN", {n: decisionOffset / PAGE + 1});
  $("newer").disabled = decisionOffset === 0;
  $("older").disabled = cache.decisions.length < PAGE;
}

async function loadTitles() {
  cache.titles = await api("/v1/console/titles");
}

function drawTitles() {
  const {year, titles} = cache.titles;
  $("titleYear").textContent = String(year);
  $("titleKinds").replaceChildren(...Object.entries(titles).map(([kind, list]) => el("section", {"data-kind": kind},
    el("h3", {text: `${t(kind)} (${list.length})`}),
    list.length ? el("ul", {}, ...list.map((x) => el("li", {text: kind === "credit_household"
      ? `${x.code} · ${placeName(x.village_code || "")}` : `${placeName(x.code)} (${x.code})`})))
      : el("p", {class: "note", text: t("none")}))));
}

// --- credit lists (red, black, repairs) -------------------------------------------------
function fillVillageCodes() {
  $("villageCodes").replaceChildren(...(board ? board.villages : []).map((v) => el("option", {value: v.code, label: v.name})));
}

function cellText(key, value) {
  if (value === null || value === undefined || value === "") return "-";
  if (["subject_kind", "decision", "decided_by_role", "cause", "tier"].includes(key)) return t(value);
  if (key === "village_code") return `${placeName(value)} (${value})`;
  if (Array.isArray(value)) return value.join("; ");
  return String(value);
}

const LIST_COLS = [["name", "name"], ["subject_kind", "subjectKind"], ["identifier_masked", "identifier"],
                   ["village_code", "village"], ["cause", "cause"], ["legal_basis", "legalBasis"],
                   ["decided_by_role", "decidedBy"], ["listed_on", "listedOn"],
                   ["publication_ends_on", "publicationEnds"]];
const BLACK_COLS = [...LIST_COLS.slice(0, 5), ["tier", "tier"], ...LIST_COLS.slice(5)];
const REPAIR_COLS = [["name", "name"], ["subject_kind", "subjectKind"], ["identifier_masked", "identifier"],
                     ["village_code", "village"], ["decision", "decision"], ["reasons", "reasons"],
                     ["decided_by_role", "decidedBy"], ["decided_on", "decidedOn"]];

function listTable(id, cols, rows) {
  table(id, cols.map(([, label]) => [t(label), "text"]), rows.map((row) => el("tr", {"data-entry": row.entry_id},
    ...cols.map(([key]) => el("td", {class: `text ${key}`, text: cellText(key, row[key])})))));
}

function drawLists() {
  listTable("redList", LIST_COLS, credit.lists.filter((e) => e.list === "red"));
  listTable("blackList", BLACK_COLS, credit.lists.filter((e) => e.list === "black"));
  listTable("repairs", REPAIR_COLS, credit.repairs);
  const full = credit.lists.length >= creditLimit || credit.repairs.length >= creditLimit;
  $("listStatus").textContent = full ? t("more", {n: creditLimit}) : "";
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
    drawLists();
    $("listStatus").textContent = `${t("listsUnavailable")} (${e.message})`;
    return;
  }
  drawLists();
}

// --- reports ----------------------------------------------------------------------------
function lastMonthEnded() {
  const d = overview ? overview.business_date : new Date().toISOString().slice(0, 10);
  const [y, m] = d.split("-").map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
}

async function download(format) {
  const month = $("reportMonth").value;
  if (!/^[0-9]{4}-[0-9]{2}$/.test(month)) return;
  $("reportStatus").textContent = t("loading");
  try {
    const r = await call(`/v1/reports/monthly/${month}?format=${format}`);
    const name = `monthly-report-${month}.${format}`;
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", {href: url, download: name});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    $("reportStatus").textContent = t("downloaded", {f: name});
  } catch (e) {
    $("reportStatus").textContent = t("failed", {e: e.message});
  }
}

// --- live events as sentences -----------------------------------------------------------
function sentence(env) {
  const p = env.payload || {};
  const thr = pctShort(threshold());
  switch (env.type) {
    case "risk.village.frozen":
      return p.manual ? t("ev_frozen_manual", {v: placeName(p.village_code), by: p.decided_by, reason: p.reason})
                      : t("ev_frozen", {v: placeName(p.village_code), npl: pct(p.npl_ratio), thr});
    case "risk.village.unfrozen":
      return p.manual ? t("ev_unfrozen_manual", {v: placeName(p.village_code), by: p.decided_by, reason: p.reason})
                      : t("ev_unfrozen", {v: placeName(p.village_code), npl: pct(p.npl_ratio), thr});
    case "risk.township.halted":
      return t("ev_halted", {t: p.township_name || placeName(p.township_code), over: p.villages_over_threshold,
                             n: p.villages, thr});
    case "risk.township.resumed":
      return t("ev_resumed", {t: p.township_name || placeName(p.township_code)});
    case "risk.fund.capacity_changed":
      return t("ev_fund", {balance: money(p.balance), capacity: money(p.capacity), cause: t(p.cause || "opening")});
    case "risk.title.awarded":
    case "risk.title.revoked":
      return t(env.type.endsWith("awarded") ? "ev_title" : "ev_title_revoked",
               {p: placeName(p.code), k: t(p.kind), y: p.year});
    case "risk.bulletin.issued":
      return t("ev_bulletin", {t: p.township_name || placeName(p.township_code), k: t(p.kind)});
    case "loans.business_date.advanced":
      return t("ev_date", {closed: p.closed_date, d: p.business_date});
    case "scoring.notice.started":
      return t("ev_notice", {h: p.head_name, g: p.grade, l: money(p.credit_limit), e: p.notice_ends});
    case "scoring.notice.ended":
      return t("ev_notice_end", {o: t(p.outcome)});
    case "registry.township.created": return t("ev_township", {n: p.name, c: p.code});
    case "registry.township.renamed": return t("ev_township_renamed", {n: p.name, c: p.code});
    case "registry.village.created": return t("ev_village", {n: p.name, c: p.code});
    case "registry.village.renamed": return t("ev_village_renamed", {n: p.name, c: p.code});
    case "registry.community.created": return t("ev_community", {n: p.name, c: p.code});
    default: return `${env.type} ${env.key}`;
  }
}

function eventItem(env) {
  const p = env.payload || {};
  const day = p.business_date || (env.type === "loans.business_date.advanced" ? p.closed_date : "");
  return el("li", {"data-type": env.type, class: /frozen|halted/.test(env.type) ? "alarm" : null},
    el("span", {class: "when"}, day ? el("span", {class: "day", text: day}) : null, " ",
       el("time", {datetime: env.occurred_at, text: localTime(env.occurred_at)})), " ",
    el("span", {class: "what", text: sentence(env)}));
}

function drawEvents() {
  const newest = events.slice(-200).reverse();
  $("live").replaceChildren(...newest.map(eventItem));
  $("latest").replaceChildren(...newest.slice(0, 8).map(eventItem));
}

// SSE through fetch (EventSource cannot send the Authorization header); resumes after the
// last id it saw, as EventSource would with Last-Event-ID.
async function stream() {
  for (;;) {
    try {
      const r = await call("/v1/stream?last_event_id=" + lastEventId);
      $("status").textContent = t("connected");
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split("\n")) {
            const j = line.indexOf(": ");
            if (j > 0) ev[line.slice(0, j)] = line.slice(j + 2);
          }
          if (ev.data) onEvent(ev);
        }
      }
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403)) return;  // not a network fault
    }
    $("status").textContent = t("disconnected");
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

// A business day's close is the header's "as of" date, not a line: a year of them would push
// every decision out of the list.
const QUIET = new Set(["loans.business_date.advanced"]);

function onEvent(ev) {
  lastEventId = Number(ev.id);
  const env = JSON.parse(ev.data);
  if (!QUIET.has(env.type)) events.push(env);
  if (events.length > 1000) events = events.slice(-500);
  // Bursts (a close of business emits many) become one reload and one redraw.
  clearTimeout(pending);
  pending = setTimeout(() => { reload().catch(showError); }, 200);
}

// --- views ------------------------------------------------------------------------------
const VIEWS = {
  overview: {load: async () => {}, draw: drawOverview},
  townships: {load: async () => {}, draw: drawTownships},
  township: {load: loadTownship, draw: drawTownship},
  village: {load: loadVillage, draw: drawVillage},
  bulletins: {load: loadBulletins, draw: drawBulletins},
  decisions: {load: loadDecisions, draw: drawDecisions},
  titles: {load: loadTitles, draw: drawTitles},
  lists: {load: async () => { if (!credit.loaded) { await loadLists(); credit.loaded = true; } }, draw: drawLists},
  reports: {load: async () => { if (!$("reportMonth").value) $("reportMonth").value = lastMonthEnded(); },
            draw: () => {}},
  events: {load: async () => {}, draw: drawEvents},
};
// Anchors of the overview's own details (a figure's link) open the overview at that place.
const OVERVIEW_PARTS = ["indicators", "fund", "losses", "subsidy"];

function route() {
  const [name, arg] = decodeURIComponent(location.hash.replace(/^#/, "")).split("/");
  if (OVERVIEW_PARTS.includes(name)) return {name: "overview", arg: name};
  return Object.hasOwn(VIEWS, name) ? {name, arg} : {name: "overview", arg: null};
}

function showError(e) {
  $("status").textContent = t("failed", {e: e.message});
}

let opening = 0;
async function open(focus) {
  const {name, arg} = route();
  const seq = ++opening;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!token) { $("status").textContent = t("needToken"); return; }
  await VIEWS[name].load(arg);
  if (seq !== opening) return;  // a later click has the screen
  // Shown once its data is in (never the previous village's figures under this one's address),
  // and drawn once shown (a chart takes the width of its box).
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${name}`;
  VIEWS[name].draw();
  const view = $(`view-${name}`);
  if (arg && name === "overview") $(arg).scrollIntoView();
  else if (focus) { view.querySelector("h2").setAttribute("tabindex", "-1"); view.querySelector("h2").focus(); }
}

async function reload() {
  await loadOverview();
  const {name, arg} = route();
  await VIEWS[name].load(arg);
  VIEWS[name].draw();
  drawEvents();
}

function applyLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = `vcredit ${t("title")}`;
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  $("lang").lang = lang === "zh" ? "en" : "zh-CN";
  if (me) {
    $("status").textContent = may("events:read") ? t("connected") : t("publicView", {n: POLL_SECONDS});
    const {name} = route();
    try { VIEWS[name].draw(); } catch (e) { /* the view has not loaded yet */ }
  }
}

async function connect() {
  token = $("token").value.trim();
  if (!token) return;
  sessionStorage.setItem("vcredit-token", token);
  try {
    me = await api("/v1/console/me");
  } catch (e) {
    me = null;
    $("status").textContent = e.status === 401 ? t("invalidToken") : t("failed", {e: e.message});
    return;
  }
  document.querySelectorAll(".needs-ledger").forEach((x) => { x.hidden = !may("ledger:read"); });
  $("nav").querySelector('a[href="#lists"]').hidden = !may("lists:read");
  document.querySelectorAll(".needs-events").forEach((x) => { x.hidden = !may("events:read"); });
  // A source that is down costs the overview, not the other views (the lists are risk's alone).
  await loadOverview().catch(showError);
  await open(false);
  clearInterval(poller);
  if (may("events:read")) {
    stream();
  } else {
    // The public role has no event stream: it reads the same published figures on a timer.
    $("status").textContent = t("publicView", {n: POLL_SECONDS});
    poller = setInterval(() => { reload().catch(showError); }, POLL_SECONDS * 1000);
  }
}

$("lang").onclick = () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("vcredit-lang", lang);
  applyLang();
};
$("login").onsubmit = (e) => { e.preventDefault(); connect().catch(showError); };
$("listSearch").onsubmit = (e) => { e.preventDefault(); if (token) loadLists(); };
$("borrowerForm").onsubmit = (e) => {
  e.preventDefault();
  loadBorrowers(route().arg).catch(showError);
};
$("reportForm").onsubmit = (e) => { e.preventDefault(); download(e.submitter ? e.submitter.value : "xlsx"); };
$("newer").onclick = () => { decisionOffset = Math.max(0, decisionOffset - PAGE); open(false).catch(showError); };
$("older").onclick = () => { decisionOffset += PAGE; open(false).catch(showError); };
window.onhashchange = () => { open(true).catch(showError); };
// A token is typed into the box, never put in a URL: a URL is kept in the browser's history,
// copied, shared on screen. One in an old /#token= link is wiped from the address bar unused.
if (/(^|[#&])token=/.test(location.hash)) {
  history.replaceState(null, "", location.pathname);
  $("status").textContent = t("tokenInUrl");
}
$("token").value = sessionStorage.getItem("vcredit-token") || "";
applyLang();
if ($("token").value) connect().catch(showError);
else open(false).catch(showError);
