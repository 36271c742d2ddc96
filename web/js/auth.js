// Sign-in against the Cognito user pool with InitiateAuth USER_SRP_AUTH and its PASSWORD_VERIFIER
// challenge (srp.js: the password never leaves the page; the app client allows no other password flow),
// and the NEW_PASSWORD_REQUIRED / SOFTWARE_TOKEN_MFA challenges that may follow. Tokens live in
// this module's memory only (not in localStorage, where any script on the origin could read them):
// a reload asks for the password again.

import { cognitoTimestamp, newEphemeral, passwordClaimSignature } from "./srp.js";

const TARGET = "AWSCognitoIdentityProviderService.";
let session = null; // {idToken, accessToken, expiresAt, claims}
const listeners = new Set();

export class AuthError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function cognito(config, action, body) {
  let response;
  try {
    response = await fetch(config.cognitoEndpoint, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + action },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new AuthError("The sign-in service cannot be reached.", "NETWORK");
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const type = String(payload.__type || payload.code || "Error").split("#").pop();
    const messages = {
      NotAuthorizedException: "Wrong user name or password.",
      UserNotFoundException: "Wrong user name or password.",
      PasswordResetRequiredException: "Your password must be reset by an administrator.",
      UserNotConfirmedException: "Your account is not confirmed yet.",
      InvalidPasswordException: "The new password does not meet the pool's password policy.",
      TooManyRequestsException: "Too many attempts: wait a minute and try again.",
    };
    throw new AuthError(messages[type] || `Sign-in failed (${type}).`, type);
  }
  return payload;
}

/** Decode a JWT's payload for display (name, groups, expiry). The API verifies it; the page never trusts it. */
export function claimsOf(token) {
  const part = String(token).split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
}

function establish(result) {
  const claims = claimsOf(result.IdToken);
  session = {
    idToken: result.IdToken,
    accessToken: result.AccessToken,
    expiresAt: Date.now() + Number(result.ExpiresIn || 3600) * 1000,
    claims,
  };
  listeners.forEach((listener) => listener(session));
  return { session };
}

/** Returns {session} when signed in, or {challenge, respond(newPassword)} for a first-time password. */
export async function signIn(config, username, password) {
  const ephemeral = newEphemeral();
  const start = await cognito(config, "InitiateAuth", {
    AuthFlow: "USER_SRP_AUTH",
    ClientId: config.userPoolClientId,
    AuthParameters: { USERNAME: username, SRP_A: ephemeral.A },
  });
  if (start.ChallengeName !== "PASSWORD_VERIFIER") {
    throw new AuthError(`The user pool asks for ${start.ChallengeName}, which the workbench does not support.`);
  }
  const challenge = start.ChallengeParameters || {};
  const timestamp = cognitoTimestamp(new Date());
  let signature;
  try {
    signature = await passwordClaimSignature({
      poolId: config.userPoolId,
      userId: challenge.USER_ID_FOR_SRP,
      password,
      a: ephemeral.a,
      salt: challenge.SALT,
      B: challenge.SRP_B,
      secretBlock: challenge.SECRET_BLOCK,
      timestamp,
    });
  } catch (error) {
    throw new AuthError("The sign-in service sent an invalid challenge.", "SRP");
  }
  const payload = await cognito(config, "RespondToAuthChallenge", {
    ChallengeName: "PASSWORD_VERIFIER",
    ClientId: config.userPoolClientId,
    Session: start.Session,
    ChallengeResponses: {
      USERNAME: challenge.USERNAME || username,
      PASSWORD_CLAIM_SECRET_BLOCK: challenge.SECRET_BLOCK,
      PASSWORD_CLAIM_SIGNATURE: signature,
      TIMESTAMP: timestamp,
    },
  });
  username = challenge.USERNAME || username;
  if (payload.AuthenticationResult) return establish(payload.AuthenticationResult);
  if (payload.ChallengeName === "NEW_PASSWORD_REQUIRED") {
    return {
      challenge: "NEW_PASSWORD_REQUIRED",
      respond: async (newPassword) => {
        const answer = await cognito(config, "RespondToAuthChallenge", {
          ChallengeName: "NEW_PASSWORD_REQUIRED",
          ClientId: config.userPoolClientId,
          Session: payload.Session,
          ChallengeResponses: { USERNAME: username, NEW_PASSWORD: newPassword },
        });
        if (!answer.AuthenticationResult) throw new AuthError("Another challenge is required (MFA is not supported here).");
        return establish(answer.AuthenticationResult);
      },
    };
  }
  if (payload.ChallengeName === "SOFTWARE_TOKEN_MFA") {
    return {
      challenge: "SOFTWARE_TOKEN_MFA",
      respond: async (code) => {
        const answer = await cognito(config, "RespondToAuthChallenge", {
          ChallengeName: "SOFTWARE_TOKEN_MFA",
          ClientId: config.userPoolClientId,
          Session: payload.Session,
          ChallengeResponses: { USERNAME: username, SOFTWARE_TOKEN_MFA_CODE: code },
        });
        if (!answer.AuthenticationResult) throw new AuthError("The user pool asks for another challenge.");
        return establish(answer.AuthenticationResult);
      },
    };
  }
  throw new AuthError(`The user pool asks for ${payload.ChallengeName}, which the workbench does not support.`);
}

export function currentSession() {
  return session;
}

export function signOut() {
  session = null;
  listeners.forEach((listener) => listener(null));
}

export function onSessionChange(listener) {
  listeners.add(listener);
}
