// Where the API and the Cognito user pool are: /config.json, written at deploy time (AWS) or served by
// `kycscreen up` (locally). Nothing about the user's rights comes from here: the API decides from the token.

let loaded = null;

export async function loadConfig() {
  if (loaded) return loaded;
  const response = await fetch("config.json", { cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = await response.json();
  for (const key of ["apiUrl", "cognitoEndpoint", "userPoolId", "userPoolClientId"]) {
    if (typeof config[key] !== "string" || !config[key]) throw new Error(`config.json lacks ${key}`);
  }
  config.apiUrl = config.apiUrl.replace(/\/+$/, "");
  config.imageOrigins = Array.isArray(config.imageOrigins) ? config.imageOrigins : [];
  loaded = Object.freeze(config);
  return loaded;
}
