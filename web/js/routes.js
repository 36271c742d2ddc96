// The review API's paths, relative to KYC_API_URL (the stage root, ending in /v1): docs/openapi.yaml.
const id = (value) => encodeURIComponent(String(value));

export const paths = {
  me: () => "/me",
  queue: (reason, state) => {
    const query = new URLSearchParams();
    if (reason) query.set("reason", reason);
    if (state) query.set("state", state);
    const text = query.toString();
    return `/reviews${text ? `?${text}` : ""}`;
  },
  caseDetail: (reviewId) => `/reviews/${id(reviewId)}`,
  claim: (reviewId) => `/reviews/${id(reviewId)}/claim`,
  verdicts: (reviewId) => `/reviews/${id(reviewId)}/verdicts`,
  approve: (reviewId, verdictId) => `/reviews/${id(reviewId)}/verdicts/${id(verdictId)}/approve`,
  exportCsv: () => "/verdicts/export?format=csv",
};

// The fixed list of attack types a verdict may name (AttackType in docs/openapi.yaml).
export const ATTACK_TYPES = [
  ["face_swap", "face swap"],
  ["reenactment", "reenactment"],
  ["fully_synthetic", "fully synthetic"],
  ["replay_screen", "replay/screen"],
  ["mask", "mask"],
  ["injected_stream", "injected stream"],
  ["other", "other"],
];

export const QUEUE_STATES = [
  ["open", "open"],
  ["awaiting_approval", "awaiting approval"],
  ["reviewed", "reviewed"],
  ["all", "all"],
];
