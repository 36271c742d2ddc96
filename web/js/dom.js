// The one way the workbench builds DOM: elements and text nodes, never HTML strings.
// Everything the applicant controls (file metadata, C2PA strings, device names, client references)
// reaches the page through here as text: it cannot become markup, script or a navigable link.

const SAFE_ATTRIBUTES = new Set([
  "id", "class", "type", "name", "value", "for", "title", "role", "colspan", "min", "max",
  "maxlength", "minlength", "rows", "placeholder", "autocomplete", "alt", "width", "height",
]);
const BOOLEAN_PROPERTIES = new Set(["disabled", "required", "hidden", "checked", "selected", "readOnly"]);

/** An in-page link target: only the workbench's own routes ("#/..."), never a URL from data. */
export function internalHref(route) {
  const text = String(route);
  if (!/^#\/[A-Za-z0-9/_.:-]*$/.test(text)) throw new Error(`not an in-page route: ${text}`);
  return text;
}

/** An image source: a blob: URL the page made, or an https/http URL on an allowed origin. */
export function imageSource(url, allowedOrigins) {
  const parsed = new URL(String(url), window.location.href);
  if (parsed.protocol === "blob:") return parsed.href;
  if ((parsed.protocol === "https:" || parsed.protocol === "http:") && allowedOrigins.includes(parsed.origin)) {
    return parsed.href;
  }
  throw new Error("image from an origin the workbench does not load from");
}

/**
 * h("tag", {class, id, on: {click}, href: "#/route", dataset: {...}, aria: {...}}, ...children)
 * Children are nodes, or anything else, which becomes a text node (String(value)).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (key === "href") {
      node.setAttribute("href", internalHref(value));
    } else if (key === "src") {
      node.setAttribute("src", value); // callers pass imageSource(...) results only
    } else if (key === "dataset") {
      for (const [name, data] of Object.entries(value)) node.dataset[name] = String(data);
    } else if (key === "aria") {
      for (const [name, data] of Object.entries(value)) node.setAttribute(`aria-${name}`, String(data));
    } else if (BOOLEAN_PROPERTIES.has(key)) {
      node[key] = Boolean(value);
    } else if (SAFE_ATTRIBUTES.has(key)) {
      node.setAttribute(key, String(value));
    } else {
      throw new Error(`attribute not allowed by the workbench's DOM helper: ${key}`);
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a container's content. */
export function mount(container, ...children) {
  container.replaceChildren();
  return append(container, children);
}

/** A definition list of label/value pairs; values are shown as text (objects as compact JSON). */
export function facts(pairs, className = "facts") {
  const list = h("dl", { class: className });
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    list.append(h("dt", {}, label), h("dd", {}, asText(value)));
  }
  return list;
}

export function asText(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.length ? value.map(asText).join(", ") : "none";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
