// AuthentiQ kiosk: guided capture at the counter. Plain JavaScript, no build step, no CDN.
// Flow: product → one step per view (camera or file, checked at once by the server) → review →
// submit (with an Idempotency-Key kept until a result arrives, so a retry never runs twice) →
// result (verdict, reasons, heatmaps, references, QR code to the full report) → when the result asks
// for photos again (its `retake` list), a retake pass over exactly those views, then submit again.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  views: [], maxEdge: 1600, product: null, index: 0,
  photos: {}, checks: {}, key: null, stream: null,
  retake: [],  // the last result's photos to take again: [{view, reason, message}]
  retakeOnly: null,  // during a retake pass: the view names to capture, in order; else null
};
const AGAINST = "argues against the automated verdict";
const KEY_STORE = "authentiq.kiosk.apiKey";
const NOT_SIGNED_IN = "This kiosk has no valid key for the AuthentiQ server. Staff: open “Kiosk settings” and enter the kiosk's API key.";

function headers() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { "X-API-Key": key } : {};
}

function say(text) { $("status").textContent = text; }

async function authedImage(img, url) {
  // <img src> cannot carry the kiosk's key: fetch with it and show the blob.
  try {
    const response = await fetch(url, { headers: headers() });
    if (response.ok) img.src = URL.createObjectURL(await response.blob());
  } catch { /* the alt text stays */ }
}

function show(step) {
  for (const id of ["step-product", "step-capture", "step-review", "step-result"]) {
    $(id).hidden = id !== step;
  }
  const heading = $(step).querySelector("h1");
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

async function problemText(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || `HTTP ${response.status}`;
  } catch { return `The server answered HTTP ${response.status}.`; }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  } catch {
    throw new Error("Cannot reach the AuthentiQ server. Check the network cable or Wi-Fi, then try again.");
  }
  if (response.status === 401 || response.status === 403) throw new Error(NOT_SIGNED_IN);
  if (!response.ok) throw new Error(await problemText(response));
  return response;
}

// --- step 1: product -------------------------------------------------------------------------

let productRetry = null;

async function loadProducts() {
  clearTimeout(productRetry);
  try {
    const [products, guide] = await Promise.all([
      api("/v1/products").then((r) => r.json()), api("/v1/views").then((r) => r.json())]);
    state.views = guide.views;
    state.maxEdge = guide.max_long_edge;
    const select = $("product");
    select.innerHTML = '<option value="">Choose…</option>';
    const brands = new Map();
    for (const p of products.items) {
      if (!brands.has(p.brand)) brands.set(p.brand, []);
      brands.get(p.brand).push(p);
    }
    for (const [brand, items] of brands) {
      const group = document.createElement("optgroup");
      group.label = brand;
      for (const p of items) {
        const option = new Option(`${p.brand} — ${p.model}`, JSON.stringify([p.brand, p.model]));
        group.append(option);
      }
      select.append(group);
    }
    say("");
  } catch (error) {
    say(error.message);
    if (error.message === NOT_SIGNED_IN) {  // nothing loads until staff save a key (then at once)
      $("product").innerHTML = '<option value="">Waiting for the kiosk key…</option>';
      return;
    }
    productRetry = setTimeout(loadProducts, 5000);  // keep trying: kiosks start before the server sometimes
  }
}

$("product").addEventListener("change", () => { $("start").disabled = !$("product").value; });
$("start").addEventListener("click", () => {
  const [brand, model] = JSON.parse($("product").value);
  state.product = { brand, model };
  state.photos = {}; state.checks = {}; state.index = 0; state.key = null;
  state.retake = []; state.retakeOnly = null;
  openStep(0);
  startCamera();
});

// --- step 2: capture, view by view -------------------------------------------------------------

function openStep(index) {
  state.index = index;
  const view = state.views[index];
  show("step-capture");
  const only = state.retakeOnly;
  $("h-view").textContent = (only
    ? `Retake ${only.indexOf(view.name) + 1} of ${only.length}: ${view.name}`
    : `Photo ${index + 1} of ${state.views.length}: ${view.name}`) + (view.required ? "" : " (optional)");
  $("hint").textContent = view.hint;
  const note = only && state.retake.find((t) => t.view === view.name);
  $("retake-note").hidden = !note;
  $("retake-note").textContent = note ? `Why again: ${note.message}` : "";
  const dots = $("dots");
  dots.innerHTML = "";
  state.views.forEach((v, i) => {
    const li = document.createElement("li");
    li.textContent = v.name;
    if (state.photos[v.name]) li.classList.add("done");
    else if (state.retakeOnly?.includes(v.name)) li.classList.add("again");
    if (i === index) { li.classList.add("current"); li.setAttribute("aria-current", "step"); }
    dots.append(li);
  });
  const photo = state.photos[view.name];
  if (photo) showPreview(photo, state.checks[view.name]); else showCamera();
  $("skip").hidden = view.required;
}

function showCamera() {
  $("camera").hidden = false; $("preview").hidden = true;
  $("shoot").hidden = false; $("retake").hidden = true; $("next").hidden = true;
  $("check").textContent = ""; $("check").className = "check";
}

function showPreview(blob, result) {
  $("preview-img").src = URL.createObjectURL(blob);
  $("camera").hidden = true; $("preview").hidden = false;
  $("shoot").hidden = true; $("retake").hidden = false;
  renderCheck(result);
}

function renderCheck(result) {
  const check = $("check");
  if (!result) { check.textContent = "Checking the photo…"; check.className = "check"; $("next").hidden = true; return; }
  if (result.error) {
    check.textContent = result.error; check.className = "check bad"; $("next").hidden = true; return;
  }
  if (result.usable) {
    check.textContent = "Good photo."; check.className = "check ok";
  } else {
    // quality (blurred, glare, ...) and view-gate findings (not_a_product, wrong_view, ...) alike
    const why = result.message || `the photo is not usable (${(result.reason || "unknown").replaceAll("_", " ")}).`;
    check.textContent = `Please retake: ${why}`; check.className = "check bad";
  }
  $("next").hidden = !result.usable;
  $("next").textContent = following(1) === null ? "Review photos" : "Next";
}

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) { cameraUnavailable("This browser offers no camera."); return; }
  try {
    const wanted = $("camera-select").value;
    const constraints = { video: wanted ? { deviceId: { exact: wanted } }
      : { facingMode: "environment", width: { ideal: 1920 }, height: { ideal: 1440 } } };
    stopCamera();
    state.stream = await navigator.mediaDevices.getUserMedia(constraints);
    $("video").srcObject = state.stream;
    $("camera-off").hidden = true; $("shoot").disabled = false; $("shoot").hidden = false;
    $("camera-select").disabled = false; $("pick").classList.remove("primary");
    document.querySelector("#camera .frame").hidden = false;
    const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
    const select = $("camera-select");
    const current = state.stream.getVideoTracks()[0]?.getSettings().deviceId;
    select.innerHTML = "";
    devices.forEach((d, i) => select.append(new Option(d.label || `Camera ${i + 1}`, d.deviceId)));
    if (current) select.value = current;
  } catch (error) {
    cameraUnavailable(error?.name === "NotAllowedError"
      ? "The camera is blocked for this page (browser or device settings)."
      : "No camera found on this device.");
  }
}

function cameraUnavailable(why) {
  // Say so, and make the file picker the way to go (a USB camera plugged in later: Retake).
  $("camera-off").textContent = `${why} Use “Choose a photo” to pick a photo file instead.`;
  $("camera-off").hidden = false; document.querySelector("#camera .frame").hidden = true;
  $("shoot").disabled = true; $("shoot").hidden = true;
  const select = $("camera-select");
  select.innerHTML = "";
  select.append(new Option("No camera available", ""));
  select.disabled = true;
  $("pick").classList.add("primary");
}

function stopCamera() {
  state.stream?.getTracks().forEach((t) => t.stop());
  state.stream = null;
}

$("camera-select").addEventListener("change", startCamera);

async function downscale(source) {
  // Long edge at most maxEdge, JPEG: saves upload time and the server's decoding.
  const bitmap = await createImageBitmap(source, { imageOrientation: "from-image" });
  const k = Math.min(1, state.maxEdge / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * k); canvas.height = Math.round(bitmap.height * k);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

async function accept(source) {
  const view = state.views[state.index].name;
  let blob;
  try { blob = await downscale(source); } catch {
    renderCheck({ error: "That file is not a photo this browser can read. Choose a JPEG, PNG or WebP." });
    return;
  }
  state.photos[view] = blob; delete state.checks[view];
  state.key = null;  // new photos: a new submission
  showPreview(blob, null);
  const form = new FormData();
  form.append("view", view);
  form.append("photo", blob, `${view}.jpg`);
  try {
    const result = await (await api("/v1/quality", { method: "POST", body: form })).json();
    state.checks[view] = result;
    if (state.views[state.index].name === view) renderCheck(result);
  } catch (error) {
    renderCheck({ error: error.message });
  }
}

$("shoot").addEventListener("click", () => {
  const video = $("video");
  if (!video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => accept(blob), "image/jpeg", 0.95);
});
$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (file) accept(file);
});
$("retake").addEventListener("click", () => {
  const view = state.views[state.index].name;
  delete state.photos[view]; delete state.checks[view];
  showCamera();
});
$("next").addEventListener("click", () => nextStep());
$("skip").addEventListener("click", () => {
  const view = state.views[state.index].name;
  delete state.photos[view]; delete state.checks[view];
  nextStep();
});
$("back").addEventListener("click", () => {
  const previous = following(-1);
  if (previous !== null) { openStep(previous); return; }
  stopCamera();
  show(state.retakeOnly ? "step-result" : "step-product");
});

function nextStep() {
  const next = following(1);
  if (next !== null) { openStep(next); return; }
  stopCamera();
  openReview();
}

function following(step) {
  // The index of the view `step` places after (or before) the current one, or null: every view in
  // order, or during a retake pass only the views to retake.
  const order = state.retakeOnly
    ? state.retakeOnly.map((name) => state.views.findIndex((v) => v.name === name))
    : state.views.map((_, i) => i);
  const at = order.indexOf(state.index) + step;
  return at >= 0 && at < order.length ? order[at] : null;
}

// --- step 3: review and submit -----------------------------------------------------------------

function openReview() {
  show("step-review");
  $("review-item").textContent = `${state.product.brand} — ${state.product.model}`;
  const thumbs = $("thumbs");
  thumbs.innerHTML = "";
  for (const v of state.views) {
    const li = document.createElement("li");
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    if (state.photos[v.name]) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(state.photos[v.name]); img.alt = `${v.name} photo`;
      figure.append(img);
      caption.textContent = v.name;
    } else {
      caption.textContent = `${v.name}: skipped`;
    }
    figure.append(caption); li.append(figure); thumbs.append(li);
  }
  $("error").hidden = true; $("progress-wrap").hidden = true; $("submit").disabled = false;
}

$("review-back").addEventListener("click", () => { state.retakeOnly = null; openStep(0); startCamera(); });
$("submit").addEventListener("click", submit);
$("retry").addEventListener("click", submit);

function submit() {
  state.key = state.key || crypto.randomUUID();  // the same key on every retry of these photos
  const form = new FormData();
  form.append("brand", state.product.brand);
  form.append("model", state.product.model);
  for (const v of state.views) {
    if (state.photos[v.name]) form.append(v.name, state.photos[v.name], `${v.name}.jpg`);
  }
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/inspections?priority=interactive");
  xhr.timeout = 120000;
  xhr.setRequestHeader("Idempotency-Key", state.key);
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  $("submit").disabled = true; $("error").hidden = true; $("progress-wrap").hidden = false;
  $("progress").value = 0; $("progress-label").textContent = "Uploading photos…";
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) $("progress").value = Math.round((e.loaded / e.total) * 90);
  };
  xhr.upload.onload = () => { $("progress").value = 92; $("progress-label").textContent = "Checking the item…"; };
  xhr.onload = () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 201 || xhr.status === 200) { $("progress").value = 100; showResult(body); return; }
    let text = body?.detail || `The server answered HTTP ${xhr.status}.`;
    if (xhr.status === 401 || xhr.status === 403) text = NOT_SIGNED_IN;
    if (xhr.status === 413) text = `A photo is too large: ${text}`;
    if (xhr.status === 415) text = `A file is not a supported photo: ${text}`;
    if (xhr.status === 503) {
      const wait = xhr.getResponseHeader("Retry-After");
      text = `The service is busy right now${wait ? `; try again in ${wait} s` : ""}. Your photos are kept.`;
    }
    failed(text);
  };
  xhr.onerror = () => failed("Cannot reach the AuthentiQ server. Check the network, then tap “Try again” — your photos are kept and will not be checked twice.");
  xhr.ontimeout = () => failed("No answer within 2 minutes. Tap “Try again”: the item will not be checked twice.");
  xhr.send(form);
}

function failed(text) {
  $("progress-wrap").hidden = true;
  $("error-text").textContent = text;
  $("error").hidden = false;
  $("submit").disabled = false;
  $("retry").focus();
}

// --- step 4: result ---------------------------------------------------------------------------

function showResult(report) {
  show("step-result");
  state.key = null;
  state.retakeOnly = null;
  showHeadline(report);
  showRetake(report.retake || []);
  const reasons = $("reasons");
  reasons.innerHTML = "";
  for (const r of report.reasons) {
    if (r.code === "automated_decision") continue;
    if (state.retake.some((t) => t.view === r.view && t.message === r.detail)) continue;  // in the box
    const li = document.createElement("li"); li.textContent = r.detail;
    if (r.stance === "against") {
      const tag = document.createElement("span");
      tag.className = "tag"; tag.textContent = AGAINST;
      li.append(" ", tag);
    }
    reasons.append(li);
  }
  $("heat-notice").textContent = report.heatmaps.notice;
  const heat = $("heatmaps");
  heat.innerHTML = "";
  for (const cls of report.heatmaps.classes) {
    for (const [view, url] of Object.entries(report.heatmaps.images[cls])) {
      if (view === "overview") continue;
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      authedImage(img, url); img.alt = `Model attention (${cls}) over the ${view} photo`;
      const caption = document.createElement("figcaption");
      caption.textContent = `${view} · model attention (${cls}), not proof of a defect`;
      figure.append(img, caption); heat.append(figure);
    }
  }
  const c = report.references.claimed;
  $("refs").textContent = c.count && c.best != null
    ? `Closest of ${c.count} genuine ${c.brand} ${c.model} references: similarity ${c.best.toFixed(3)}.`
    : `No genuine ${c.brand} ${c.model} references are enrolled; the classifier alone scored the item.`;
  showShareLink(report);
  $("statement").textContent = report.statement_of_reasons.text;
  say("");
}

async function showShareLink(report) {
  // The customer's QR code and link: a signed, expiring, read-only share link to the report's
  // summary (never the auditor page, which needs a sign-in).
  const link = $("report-link");
  link.removeAttribute("href"); link.textContent = "…";
  $("qr").removeAttribute("src");
  try {
    const share = await api(`/v1/reports/${report.id}/share-links`, { method: "POST" }).then((r) => r.json());
    link.href = share.url; link.textContent = share.url;
    authedImage($("qr"), share.qr);
  } catch (error) {
    link.textContent = `no share link: ${error.message}`;
  }
}

function showHeadline(report) {
  // The final verdict and who stands behind it. After a review the automated figures are named as
  // such, never shown under a reviewer's verdict as if they were the reviewer's.
  const review = report.review || {};
  const status = review.status || "unreviewed";
  const final = review.final_verdict || report.verdict;
  const verdict = $("verdict");
  verdict.textContent = final.toUpperCase();
  verdict.className = `verdict v-${final}`;
  const reviews = review.reviews || [];
  const decisive = (status === "overridden"
    && [...reviews].reverse().find((r) => r.decision === "override" && r.verdict === final))
    || reviews[reviews.length - 1];
  const who = decisive ? ` by ${decisive.reviewer}, ${String(decisive.created_at).slice(0, 10)}` : "";
  const by = $("decided-by");
  by.hidden = status === "unreviewed";
  by.textContent = status === "overridden" ? `Reviewer's verdict (overrides the automated verdict)${who}`
    : status === "confirmed" ? `Confirmed${who || " by a reviewer"}` : "";
  const confidence = report.verdict !== "inconclusive" && typeof report.confidence === "number"
    ? report.confidence : null;  // an inconclusive verdict has none (null since report schema v3)
  let figures = "";
  if (status !== "unreviewed") {
    figures = ` · automated verdict: ${report.verdict}` + (confidence === null ? "" : ` (confidence ${confidence.toFixed(3)})`);
  } else if (confidence !== null) {
    figures = ` · confidence ${confidence.toFixed(3)}`;
  }
  $("summary").textContent = `${report.brand} — ${report.model}${figures}`;
}

function showRetake(retake) {
  // Photos the service asks for again (quality or view gate), each named with its message.
  state.retake = retake.filter((t) => state.views.some((v) => v.name === t.view));
  const list = $("retake-list");
  list.innerHTML = "";
  for (const t of state.retake) {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = t.view;
    li.append(name, `: ${t.message}`);
    list.append(li);
  }
  $("retake-box").hidden = state.retake.length === 0;
}

$("retake-start").addEventListener("click", () => {
  state.retakeOnly = state.retake.map((t) => t.view);
  for (const view of state.retakeOnly) { delete state.photos[view]; delete state.checks[view]; }
  state.key = null;  // new photos: a new submission
  openStep(state.views.findIndex((v) => v.name === state.retakeOnly[0]));
  startCamera();
});
$("print").addEventListener("click", () => window.print());
$("again").addEventListener("click", () => {
  state.photos = {}; state.checks = {}; state.key = null; state.retake = []; state.retakeOnly = null;
  show("step-product");
});

// --- settings: a kiosk-scoped API key entered once by staff --------------------------------------

$("settings-open").addEventListener("click", () => {
  $("api-key").value = localStorage.getItem(KEY_STORE) || "";
  $("settings").showModal();
});
$("settings").addEventListener("close", () => {
  if ($("settings").returnValue !== "save") return;
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE);
  say(key ? "Kiosk key saved on this device." : "Kiosk key removed from this device.");
  if (!$("step-product").hidden) {  // the product list with the new key, now (not at the next retry)
    $("product").innerHTML = '<option value="">Loading…</option>';
    loadProducts();
  }
});

loadProducts();
