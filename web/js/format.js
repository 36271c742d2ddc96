// Small formatting helpers (ages, deadlines, bands): pure functions, no DOM.

export function ageSeconds(isoTime, now = Date.now()) {
  const at = Date.parse(isoTime);
  return Number.isFinite(at) ? Math.max(0, Math.round((now - at) / 1000)) : null;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  const text = d ? `${d}d ${hr}h` : hr ? `${hr}h ${m}m` : `${m}m`;
  return seconds < 0 ? `-${text}` : text;
}

/** How a case stands against the review deadline: ok, due (last quarter), overdue. */
export function deadlineState(age, deadlineSeconds) {
  if (age === null) return "ok";
  if (age >= deadlineSeconds) return "overdue";
  return age >= deadlineSeconds * 0.75 ? "due" : "ok";
}

export function when(isoTime) {
  const at = Date.parse(isoTime);
  return Number.isFinite(at) ? new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "—";
}
