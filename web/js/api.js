// Calls to the review API with the signed-in user's token. The API authorises every call from the
// token's groups; a 401 ends the session here (expired, revoked or forged token) and the page says so.

import { currentSession, signOut } from "./auth.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorised = () => {};
export function whenUnauthorised(handler) {
  onUnauthorised = handler;
}

export async function call(config, method, path, body) {
  const session = currentSession();
  if (!session) throw new ApiError(401, "NOT_SIGNED_IN", "Not signed in.");
  const token = config.apiToken === "access" ? session.accessToken : session.idToken;
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(config.apiUrl + path, {
      method,
      headers,
      credentials: "omit",
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    // API Gateway's own 401 (authorizer) may lack CORS headers: the browser then reports a network
    // error. A token past its expiry is the likely cause, and the page must say so.
    if (Date.now() >= session.claims.exp * 1000) return expired(null);
    throw new ApiError(0, "NETWORK", "The review API cannot be reached.");
  }
  const payload = await response.json().catch(() => null);
  const detail = (payload && payload.error) || {};
  if (response.status === 401) return expired(detail.code);
  if (!response.ok) {
    const code = detail.code || `HTTP_${response.status}`;
    const message = detail.message || `The API refused the request (HTTP ${response.status}).`;
    const error = new ApiError(response.status, String(code), String(message));
    error.details = detail.details || {};
    throw error;
  }
  return payload;
}

function expired(code) {
  signOut();
  const error = new ApiError(401, code || "UNAUTHORIZED",
    "Your session has expired or your token is not valid (HTTP 401). Sign in again.");
  onUnauthorised(error);
  throw error;
}
