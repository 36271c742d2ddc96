// Cognito's Secure Remote Password sign-in (USER_SRP_AUTH, then the PASSWORD_VERIFIER challenge): the
// password never leaves the page; the page proves it knows it. The maths follow AWS's own client
// (amazon-cognito-identity-js, AuthenticationHelper): the 3072-bit group of RFC 5054 with g = 2,
// k = H(N | g), u = H(A | B), x = H(salt | H(poolName | userId ":" password)),
// S = (B - k g^x)^(a + u x) mod N, key = HKDF-SHA256(ikm S, salt u, "Caldera Derived Key")[0..16],
// signature = HMAC-SHA256(key, poolName | userId | secretBlock | timestamp). BigInt for the group
// arithmetic, WebCrypto for SHA-256, HKDF, HMAC and randomness; no third-party code (strict CSP).
// tests/integration/test_workbench_srp.py checks it against pycognito's AWSSRP, an independent copy.

const N_HEX =
  "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
  "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
  "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
  "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
  "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
  "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
  "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C" +
  "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";
const N = BigInt("0x" + N_HEX);
const G = 2n;
const INFO = new TextEncoder().encode("Caldera Derived Key");
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export class SrpError extends Error {
  constructor(message) {
    super(message);
    this.name = "SrpError";
  }
}

function modPow(base, exponent, modulus) {
  let result = 1n;
  base %= modulus;
  if (base < 0n) base += modulus;
  while (exponent > 0n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
    exponent >>= 1n;
  }
  return result;
}

/** Hex of a non-negative integer as AWS's client hashes it: even length, a leading 00 keeps it positive. */
export function padHex(value) {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  else if ("89abcdef".includes(hex[0])) hex = "00" + hex;
  return hex;
}

function hexBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
  return bytes;
}

function bytesHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function sha256Hex(bytes) {
  return bytesHex(await crypto.subtle.digest("SHA-256", bytes)).padStart(64, "0");
}

function parseHex(name, hex) {
  if (typeof hex !== "string" || !/^[0-9a-fA-F]+$/.test(hex)) throw new SrpError(`${name} is not hex`);
  return BigInt("0x" + hex);
}

/** Base64 as Python's default decoder reads it: characters outside the alphabet are skipped. */
function base64Bytes(text) {
  const clean = String(text).replace(/[^A-Za-z0-9+/]/g, "");
  const padded = clean.padEnd(Math.ceil(clean.length / 4) * 4, "=");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/** The TIMESTAMP Cognito expects: "Sun Dec 6 09:01:19 UTC 2026" (day not padded, UTC). */
export function cognitoTimestamp(date) {
  const two = (n) => String(n).padStart(2, "0");
  return (
    `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} UTC ${date.getUTCFullYear()}`
  );
}

/** A fresh private value a (1024 random bits mod N) and its public A = g^a mod N, both as hex. */
export function newEphemeral() {
  const random = crypto.getRandomValues(new Uint8Array(128));
  const a = BigInt("0x" + bytesHex(random)) % N;
  return ephemeralFrom(a.toString(16));
}

/** The public value for a given private one (the tests fix a; the page never does). */
export function ephemeralFrom(aHex) {
  const a = parseHex("a", aHex);
  const A = modPow(G, a, N);
  if (a === 0n || A === 0n) throw new SrpError("degenerate SRP private value");
  return { a: aHex, A: A.toString(16) };
}

/**
 * The PASSWORD_VERIFIER answer's signature (base64) for one challenge.
 * poolId "eu-west-1_AbC": the part after "_" is the pool name SRP hashes; userId is the challenge's
 * USER_ID_FOR_SRP; salt and B are its SALT and SRP_B (hex); secretBlock its SECRET_BLOCK (base64).
 */
export async function passwordClaimSignature({ poolId, userId, password, a, salt, B, secretBlock, timestamp }) {
  const poolName = String(poolId).split("_")[1];
  if (!poolName) throw new SrpError("the user pool id has no name part");
  const bigA = parseHex("A", ephemeralFrom(a).A);
  const bigB = parseHex("SRP_B", B);
  if (bigB % N === 0n) throw new SrpError("the server's SRP_B is not valid");
  const u = BigInt("0x" + (await sha256Hex(hexBytes(padHex(bigA) + padHex(bigB)))));
  if (u === 0n) throw new SrpError("SRP u is zero");
  const k = BigInt("0x" + (await sha256Hex(hexBytes("00" + N_HEX + "0" + G.toString(16)))));
  const identity = await sha256Hex(new TextEncoder().encode(`${poolName}${userId}:${password}`));
  const x = BigInt("0x" + (await sha256Hex(hexBytes(padHex(parseHex("SALT", salt)) + identity))));
  const S = modPow(bigB - k * modPow(G, x, N), parseHex("a", a) + u * x, N);
  const ikm = await crypto.subtle.importKey("raw", hexBytes(padHex(S)), "HKDF", false, ["deriveBits"]);
  const keyBits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: hexBytes(padHex(u)), info: INFO },
    ikm,
    128,
  );
  const key = await crypto.subtle.importKey("raw", keyBits, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const message = concat(
    new TextEncoder().encode(poolName),
    new TextEncoder().encode(userId),
    base64Bytes(secretBlock),
    new TextEncoder().encode(timestamp),
  );
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
  return btoa(String.fromCharCode(...signature));
}
