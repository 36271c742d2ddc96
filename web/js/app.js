// The reviewer workbench: sign-in, the queue, a case, its verdicts. One module per concern; this one
// routes (#/queue, #/case/<id>) and draws. Every value from the API is put on the page as text (dom.js).

import { loadConfig } from "./config.js";
import { AuthError, currentSession, onSessionChange, signIn, signOut } from "./auth.js";
import { ApiError, call, whenUnauthorised } from "./api.js";
import { ATTACK_TYPES, QUEUE_STATES, paths } from "./routes.js";
import { append, asText, facts, h, imageSource, mount } from "./dom.js";
import { deadlineState, duration, when } from "./format.js";

const view = document.getElementById("view");
const notice = document.getElementById("notice");
let config = null;

function say(message, kind = "error") {
  notice.hidden = !message;
  notice.className = `notice ${kind}`;
  notice.textContent = message || "";
}


// ------------------------------------------------------------------ sign-in
function showSignIn(message) {
  document.getElementById("nav").hidden = true;
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const status = h("p", { id: "signin-status", class: "muted", role: "status" }, message || "");
  const form = h("form", { id: "signin", class: "card narrow", on: { submit: onSubmit } },
    h("h1", {}, "Sign in"),
    h("label", { for: "username" }, "User name"), user,
    h("label", { for: "password" }, "Password"), password,
    h("button", { type: "submit", id: "signin-submit" }, "Sign in"),
    status);
  mount(view, form);
  user.focus();

  async function onSubmit(event) {
    event.preventDefault();
    status.textContent = "Signing in…";
    try {
      const result = await signIn(config, user.value.trim(), password.value);
      if (result.challenge) return showNewPassword(result);
      say("");
      if (!location.hash || location.hash === "#/signin") location.hash = "#/queue";
      else route();
    } catch (error) {
      status.textContent = error instanceof AuthError ? error.message : "Sign-in failed.";
      status.className = "error-text";
    }
  }
}

function showNewPassword(result) {
  const mfa = result.challenge === "SOFTWARE_TOKEN_MFA";
  const input = mfa
    ? h("input", { id: "mfa-code", autocomplete: "one-time-code", minlength: 6, maxlength: 6, required: true })
    : h("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true });
  const status = h("p", { class: "muted", role: "status" });
  mount(view, h("form", {
    class: "card narrow",
    on: {
      submit: async (event) => {
        event.preventDefault();
        try {
          await result.respond(input.value);
          location.hash = "#/queue";
          route();
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
  }, h("h1", {}, mfa ? "Authenticator code" : "Choose a password"),
  h("label", { for: input.id }, mfa ? "6-digit code from your authenticator app" : "New password"), input,
  h("button", { type: "submit" }, mfa ? "Sign in" : "Set password and sign in"), status));
}

// ------------------------------------------------------------------ who am I (the API's view)
let me = null; // GET /me: reviewer_id, groups, can{...}: shows or hides controls; the API still decides

async function whoAmI() {
  if (!me) me = await call(config, "GET", paths.me());
  document.getElementById("who").textContent =
    `${me.username || me.reviewer_id} · ${(me.groups || []).join(", ") || "no group"}`;
  return me;
}

// ------------------------------------------------------------------ queue
async function showQueue(params) {
  const reason = params.get("reason") || "";
  const state = params.get("state") || "open";
  mount(view, h("p", { class: "muted" }, "Loading the queue…"));
  const data = await call(config, "GET", paths.queue(reason, state));
  const items = data.items || [];
  const deadlineSeconds = Number(data.deadline_hours || 24) * 3600;
  const reasons = new Set(reason ? [reason] : []);
  items.forEach((item) => (item.reasons || []).forEach((r) => reasons.add(r)));
  const go = (nextReason, nextState) => {
    const query = new URLSearchParams();
    if (nextReason) query.set("reason", nextReason);
    if (nextState && nextState !== "open") query.set("state", nextState);
    location.hash = `#/queue${query.toString() ? `?${query}` : ""}`;
  };
  const reasonFilter = h("select", { id: "reason-filter", on: { change: (e) => go(e.target.value, state) } },
    h("option", { value: "" }, "all reasons"),
    [...reasons].sort().map((r) => h("option", { value: r, selected: r === reason }, r)));
  const stateFilter = h("select", { id: "state-filter", on: { change: (e) => go(reason, e.target.value) } },
    QUEUE_STATES.map(([value, label]) => h("option", { value, selected: value === state }, label)));

  const rows = items.map((item) => {
    const status = item.overdue ? "overdue" : deadlineState(item.age_seconds, deadlineSeconds);
    const lease = item.lease;
    return h("tr", { class: `case-row ${status}`, dataset: { reviewId: item.review_id } },
      h("td", {}, h("a", { href: `#/case/${item.review_id}`, class: "case-link" }, `${item.review_id.slice(0, 12)}…`)),
      h("td", {}, when(item.decided_at)),
      h("td", { class: `age ${status}` }, `${duration(item.age_seconds)} of ${duration(deadlineSeconds)}`,
        status === "ok" ? "" : ` (${status})`),
      h("td", { class: "reasons" }, (item.reasons || []).map((r) => h("span", { class: "tag" }, r))),
      h("td", {}, asText(item.score_band)),
      h("td", {}, item.state.replace(/_/g, " ")),
      h("td", { class: "lease" }, lease ? `${lease.held_by_me ? "you" : lease.holder} until ${when(lease.expires_at)}` : "free"));
  });
  const table = items.length
    ? h("table", { id: "queue", class: "grid" },
      h("thead", {}, h("tr", {}, ["case", "decided", "age / deadline", "reasons", "score band", "state", "lease"]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, rows))
    : h("p", { id: "queue-empty", class: "muted" }, reason ? `No cases with ${reason}.` : "No cases here.");
  const controls = [h("label", { for: "state-filter", class: "push" }, "State "), stateFilter,
    h("label", { for: "reason-filter" }, "Reason "), reasonFilter];
  if (me && me.can && me.can.export) {
    controls.push(h("button", { type: "button", id: "export", on: { click: exportCsv } }, "Export labelled set (CSV)"));
  }
  mount(view, h("section", { class: "card" },
    h("div", { class: "row" }, h("h1", {}, "Review queue"),
      h("span", { class: "muted", id: "queue-count" }, `${items.length} case(s), oldest first`), controls),
    table,
    data.next_cursor ? h("p", { class: "muted" }, "More cases wait beyond this page: narrow the filter or work the oldest first.") : ""));
}

async function exportCsv() {
  const session = currentSession();
  const response = await fetch(config.apiUrl + paths.exportCsv(), {
    headers: { Authorization: `Bearer ${session.idToken}`, Accept: "text/csv" }, credentials: "omit", cache: "no-store",
  });
  if (!response.ok) return say(`Export refused (HTTP ${response.status}).`);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `kycscreen-verdicts-${new Date().toISOString().slice(0, 10)}.csv`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ------------------------------------------------------------------ case
async function showCase(reviewId) {
  mount(view, h("p", { class: "muted" }, "Loading the case…"));
  const data = await call(config, "GET", paths.caseDetail(reviewId));
  const can = (me && me.can) || {};
  const decision = data.decision || {};
  const versions = data.versions || {};
  const lease = data.lease;
  const mine = Boolean(lease && lease.held_by_me);
  const actions = h("div", { class: "actions", id: "case-actions" });
  if (can.claim && !mine) {
    actions.append(h("button", {
      type: "button", id: "claim",
      on: { click: () => act(() => call(config, "POST", paths.claim(reviewId)), "Case claimed.", reviewId) },
    }, lease ? "Claim (when the lease is free)" : "Claim this case"));
  }
  if (!can.claim && !can.approve) actions.append(h("span", { class: "muted", id: "read-only" }, "Read only (auditor)."));

  const sections = [
    h("div", { class: "row" }, h("h1", {}, "Case ", h("code", { id: "case-id" }, reviewId)),
      h("a", { href: "#/queue", class: "push" }, "← queue")),
    facts([
      ["decision", decision.decision],
      ["reasons", decision.reasons],
      ["decided", when(decision.decided_at)],
      ["age", decision.age_seconds !== undefined ? `${duration(decision.age_seconds)}${decision.overdue ? " (overdue)" : ""}` : undefined],
      ["review deadline", decision.deadline_at ? when(decision.deadline_at) : undefined],
      ["score band", decision.score_band],
      ["frames", decision.frames_sampled !== undefined
        ? `${asText(decision.frames_sampled)} sampled, ${asText(decision.frames_scored)} scored, ${asText(decision.frames_with_face)} with a face` : undefined],
      ["model", versions.model && typeof versions.model === "object"
        ? [versions.model.name, versions.model.version].filter(Boolean).join(" ") : versions.model],
      ["policy", versions.policy_version],
      ["code", versions.code_version && typeof versions.code_version === "object"
        ? Object.values(versions.code_version).join(" ") : versions.code_version ?? versions.code],
      ["client reference", data.client_reference],
      ["state", data.state && data.state.replace(/_/g, " ")],
      ["lease", lease ? `held by ${mine ? "you" : lease.holder} until ${when(lease.expires_at)}` : "free"],
      ["four-eyes", data.requires_approval_for && data.requires_approval_for.length
        ? `an approver must confirm a verdict of ${data.requires_approval_for.join(" or ")}` : "no verdict here needs an approver"],
    ], "facts case-facts"),
    actions,
  ];
  const sheet = data.contact_sheet;
  if (sheet && sheet.url) {
    try {
      sections.push(h("section", { id: "sheet" }, h("h2", {}, "Contact sheet"),
        h("img", { id: "contact-sheet", alt: "contact sheet of the sampled frames", src: imageSource(sheet.url, config.imageOrigins) }),
        h("p", { class: "muted" }, `link valid until ${when(sheet.expires_at)}`)));
    } catch (error) {
      sections.push(h("p", { class: "error-text", id: "no-sheet" }, "The contact sheet's address is not on an allowed origin."));
    }
  } else {
    sections.push(h("p", { class: "muted", id: "no-sheet" }, "No contact sheet for this case."));
  }
  sections.push(faceEvidence(data.faces || []));
  sections.push(provenance(data.provenance));
  sections.push(reuse(data.reuse || []));
  if (data.media) sections.push(h("section", { id: "media" }, h("h2", {}, "Media"), tree(data.media)));
  sections.push(verdictHistory(reviewId, data, can));
  if (can.record_verdict && mine) sections.push(verdictForm(reviewId, data));
  mount(view, h("article", { class: "card", id: "case" }, sections));
}

const num = (value, digits = 0) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—");

/** The largest face the detector found on a frame, summarised (size as a share of the frame's width). */
function faceSummary(faces) {
  const list = Array.isArray(faces) ? faces.filter((f) => f && typeof f === "object") : [];
  if (!list.length) return "—";
  const area = (f) => (f.box ? Number(f.box.width || 0) * Number(f.box.height || 0) : 0);
  const face = list.reduce((a, b) => (area(b) > area(a) ? b : a));
  const pose = face.pose || {};
  return [
    face.box ? `width ${num(Number(face.box.width) * 100)} %` : null,
    `confidence ${num(face.confidence, 1)}`,
    `brightness ${num(face.brightness)}`,
    `sharpness ${num(face.sharpness)}`,
    `yaw ${num(pose.yaw)}°, pitch ${num(pose.pitch)}°, roll ${num(pose.roll)}°`,
  ].filter(Boolean).join(" · ");
}

function faceEvidence(frames) {
  const section = h("section", { id: "face-evidence" }, h("h2", {}, "Face evidence per frame"),
    h("p", { class: "muted" }, "From the face detector (not the deepfake model): the largest face on each sampled frame and the policy's quality issues."));
  if (!frames.length) return append(section, [h("p", { class: "muted" }, "No face evidence recorded.")]);
  return append(section, [h("table", { class: "grid compact" },
    h("thead", {}, h("tr", {}, ["frame", "faces", "largest face", "issues"].map((c) => h("th", {}, c)))),
    h("tbody", {}, frames.map((f, index) => {
      const issues = [].concat(f.issues || f.gates || []);
      const count = f.face_count ?? (Array.isArray(f.faces) ? f.faces.length : f.faces);
      return h("tr", { class: `face-row ${issues.length ? "has-issues" : ""}` },
        h("td", {}, asText(f.frame_id ?? String(index).padStart(3, "0"))),
        h("td", {}, asText(count)),
        h("td", {}, faceSummary(f.faces)),
        h("td", {}, issues.length ? issues.map((i) => h("span", { class: "tag" }, i)) : "none"));
    })))]);
}

/** Any JSON value as nested definition lists; keys and values as text only. */
function tree(value, depth = 0) {
  if (value === null || typeof value !== "object" || depth > 6) return h("span", { class: "value" }, asText(value));
  if (Array.isArray(value)) {
    if (!value.length) return h("span", { class: "muted" }, "none");
    if (value.every((v) => v === null || typeof v !== "object")) return h("span", { class: "value" }, asText(value));
    return h("ol", { class: "tree" }, value.map((v) => h("li", {}, tree(v, depth + 1))));
  }
  const list = h("dl", { class: "facts tree" });
  for (const [key, item] of Object.entries(value)) list.append(h("dt", {}, key.replace(/_/g, " ")), h("dd", {}, tree(item, depth + 1)));
  return list;
}

function provenance(prov) {
  const section = h("section", { id: "provenance" }, h("h2", {}, "Provenance"),
    h("p", { class: "muted" }, "Evidence, not a verdict: a missing manifest proves nothing; a valid one proves who signed. Strings here come from the applicant's file."));
  if (!prov) return append(section, [h("p", { class: "muted" }, "No provenance recorded.")]);
  return append(section, [tree(prov)]);
}

function reuse(matches) {
  const section = h("section", { id: "reuse" }, h("h2", {}, "Re-submitted media"));
  if (!matches.length) return append(section, [h("p", { class: "muted" }, "No earlier submission matches.")]);
  return append(section, [h("ul", {}, matches.map((m) => {
    const earlier = String(m.submission_id || "");
    const link = /^[0-9a-f]{64}$/.test(earlier)
      ? h("a", { href: `#/case/${earlier}`, class: "reuse-link" }, `earlier case ${earlier.slice(0, 12)}…`)
      : h("span", {}, `earlier submission ${earlier}`);
    return h("li", { class: "reuse-match" }, link, ` · ${asText(m.kind)}`, m.strength !== undefined ? ` · strength ${asText(m.strength)}` : "");
  }))]);
}

function verdictHistory(reviewId, data, can) {
  const verdicts = data.verdicts || [];
  const section = h("section", { id: "verdicts" }, h("h2", {}, "Verdicts"));
  if (!verdicts.length) return append(section, [h("p", { class: "muted" }, "No verdict yet.")]);
  return append(section, [h("ol", {}, verdicts.map((v) => {
    const own = me && v.reviewer_id === me.reviewer_id;
    const item = h("li", { class: `verdict ${v.status}`, dataset: { verdictId: v.verdict_id } },
      h("strong", { class: "verdict-value" }, v.verdict, v.attack_type ? ` / ${v.attack_type.replace(/_/g, " ")}` : ""),
      h("span", { class: "verdict-status" }, ` · ${v.status.replace(/_/g, " ")}`),
      ` · ${v.verdict_id} by ${own ? "you" : v.reviewer_id} at ${when(v.recorded_at)}`,
      v.supersedes ? ` · corrects ${v.supersedes}` : "",
      h("blockquote", { class: "reason-text" }, asText(v.reason)));
    if (v.approval) item.append(h("p", { class: "approval" }, `confirmed by ${v.approval.approver_id} at ${when(v.approval.approved_at)}`));
    if (v.status === "awaiting_approval" && can.approve) {
      if (own) {
        item.append(h("p", { class: "muted own-verdict" }, "Your own verdict: another approver must confirm it (four-eyes)."));
      } else {
        item.append(h("button", {
          type: "button", class: "approve",
          on: { click: () => act(() => call(config, "POST", paths.approve(reviewId, v.verdict_id), {}), "Verdict confirmed.", reviewId) },
        }, "Confirm this verdict (four-eyes)"));
      }
    }
    return item;
  }))]);
}

function verdictForm(reviewId, data) {
  const current = (data.verdicts || []).find((v) => v.status === "effective" || v.status === "awaiting_approval");
  const attackType = h("select", { id: "attack-type", name: "attack_type", disabled: true },
    h("option", { value: "" }, "attack type…"), ATTACK_TYPES.map(([value, label]) => h("option", { value }, label)));
  const radios = ["genuine", "attack", "inconclusive"].map((value) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "verdict", value, id: `verdict-${value}`, required: true,
      on: { change: () => { attackType.disabled = value !== "attack"; attackType.required = value === "attack"; } } }),
    ` ${value}`));
  const reason = h("textarea", { id: "verdict-reason", name: "reason", rows: 3, minlength: 3, maxlength: 2000, required: true,
    placeholder: "What you saw, in a sentence or two" });
  const form = h("form", { id: "verdict-form", class: "card inset", on: { submit: async (event) => {
    event.preventDefault();
    const verdict = new FormData(form).get("verdict");
    const body = { verdict, reason: reason.value.trim() };
    if (verdict === "attack") body.attack_type = attackType.value;
    if (current) body.supersedes = current.verdict_id;
    await act(() => call(config, "POST", paths.verdicts(reviewId), body), "Verdict recorded.", reviewId);
  } } }, h("h2", {}, current ? `Correct verdict ${current.verdict_id}` : "Your verdict"),
  h("fieldset", {}, radios), attackType,
  h("label", { for: "verdict-reason" }, "Reason"), reason, h("button", { type: "submit", id: "verdict-submit" }, "Record verdict"));
  return form;
}

async function act(request, success, caseId) {
  try {
    const result = await request();
    const status = result && result.status;
    say(status === "awaiting_approval" ? `${success} It needs an approver's confirmation (four-eyes).` : success, "ok");
    await showCase(caseId);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    say(error instanceof ApiError ? `${error.message} (${error.code})` : String(error.message || error));
  }
}

// ------------------------------------------------------------------ routing
async function route() {
  if (!currentSession()) return showSignIn();
  const [path, query] = (location.hash.slice(1) || "/queue").split("?");
  const params = new URLSearchParams(query || "");
  try {
    await whoAmI();
    const caseMatch = /^\/case\/([^/]+)$/.exec(path);
    if (caseMatch) return await showCase(decodeURIComponent(caseMatch[1]));
    return await showQueue(params);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    mount(view, h("p", { class: "error-text", id: "view-error" }, error instanceof ApiError ? `${error.message} (${error.code})` : "Something went wrong."));
  }
}

onSessionChange((session) => {
  document.getElementById("nav").hidden = !session;
  if (!session) me = null;
  document.getElementById("who").textContent = session ? String(session.claims["cognito:username"] || "") : "";
});
whenUnauthorised((error) => {
  say(error.message);
  showSignIn();
});
document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  say("Signed out.", "ok");
  showSignIn();
});
window.addEventListener("hashchange", () => {
  say("");
  route();
});

loadConfig()
  .then((loadedConfig) => {
    config = loadedConfig;
    document.body.dataset.ready = "true";
    return route();
  })
  .catch((error) => mount(view, h("p", { class: "error-text" }, `The workbench cannot start: ${error.message}`)));
