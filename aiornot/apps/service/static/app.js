// aiornot web page: pick or drop a photo, send it to /v1/detect, show the verdict and the evidence.
// Korean by default, English on request (the choice is kept in localStorage). Everything the server
// returns is written with textContent, never innerHTML: metadata inside a photo is untrusted text.
"use strict";

(() => {
  // ------------------------------------------------------------------------------ UI strings
  // The page's words, both languages, from the server's message catalogue (aiornot/contract/messages.toml,
  // table [page]): the server writes them into index.html, so the page needs no request for them.
  const STRINGS = JSON.parse(document.getElementById("page-strings").textContent);
  const LANG_KEY = "aiornot.lang";

  const $ = (id) => document.getElementById(id);
  // `verdicts`: the server's catalogue (GET /v1/catalogue), name → {label, label_ko, explanation, explanation_ko}.
  const state = { lang: loadLanguage(), health: null, verdicts: {}, file: null, result: null, error: null, controller: null, photoUrl: null };

  // ------------------------------------------------------------------------------ language
  function loadLanguage() {
    try {
      const saved = window.localStorage.getItem(LANG_KEY);
      return saved === "en" || saved === "ko" ? saved : "ko";
    } catch (_) {
      return "ko"; // storage can be blocked (private mode, strict policies): Korean is the default
    }
  }

  function saveLanguage(lang) {
    try {
      window.localStorage.setItem(LANG_KEY, lang);
    } catch (_) {
      /* the choice then lasts for this visit only */
    }
  }

  function t(key, vars = {}) {
    const text = STRINGS[state.lang][key] ?? STRINGS.ko[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  }

  function limits() {
    const bytes = state.health ? state.health.max_upload_bytes : 20 * 1024 * 1024;
    return { maxMb: Math.round(bytes / (1024 * 1024)) };
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t("pageTitle");
    for (const element of document.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n, limits());
    }
    for (const button of document.querySelectorAll(".lang-button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
    if (state.result) renderResult(state.result);
    if (state.error) renderError(state.error);
    renderServiceAlert();
  }

  function setLanguage(lang) {
    if (!STRINGS[lang]) return;
    state.lang = lang;
    saveLanguage(lang);
    applyLanguage();
  }

  // Server texts come in pairs (rule / rule_ko, summary / summary_ko …): pick the one for the page.
  function localized(object, key) {
    const korean = object[`${key}_ko`];
    return state.lang === "ko" && korean ? korean : object[key] ?? "";
  }

  // ------------------------------------------------------------------------------ service state
  async function loadHealth() {
    try {
      const response = await fetch("/healthz", { headers: { Accept: "application/json" } });
      state.health = await response.json();
    } catch (_) {
      state.health = null;
    }
    if (state.health && state.health.api_key_required) $("api-key-field").hidden = false;
    if (state.health && state.health.version) $("version").textContent = `aiornot ${state.health.version}`;
    applyLanguage();
    updateButton();
  }

  // The verdict names and their messages come from the server, the one place they are defined.
  async function loadCatalogue() {
    try {
      const response = await fetch("/v1/catalogue", { headers: { Accept: "application/json" } });
      const catalogue = await response.json();
      state.verdicts = Object.fromEntries(catalogue.verdicts.map((entry) => [entry.name, entry]));
    } catch (_) {
      state.verdicts = {}; // verdicts are then shown by their names
    }
    applyLanguage();
  }

  function verdictText(verdict, key) {
    const entry = Object.hasOwn(state.verdicts, verdict) ? state.verdicts[verdict] : null;
    return entry ? localized(entry, key) : key === "label" ? String(verdict) : "";
  }

  function modelMissing() {
    return Boolean(state.health && state.health.status === "no_model");
  }

  function renderServiceAlert() {
    const alert = $("service-alert");
    alert.hidden = !modelMissing();
    if (modelMissing()) alert.textContent = t("noModel");
  }

  // ------------------------------------------------------------------------------ choosing a file
  function chooseFile(file) {
    if (!file) return;
    state.file = file;
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = URL.createObjectURL(file); // stays in this browser; only the bytes are sent for analysis
    const thumb = $("thumb");
    thumb.hidden = false;
    thumb.onerror = () => { thumb.hidden = true; }; // not every file can be previewed (TIFF, or not an image)
    thumb.src = state.photoUrl;
    $("selected-name").textContent = displayName(file.name);
    $("selected-size").textContent = formatBytes(file.size);
    $("selected").hidden = false;
    updateButton();
    analyse();
  }

  // A file name as it may be shown: control, bidirectional and separator characters (U+202E can
  // make "gpj.exe" read as "exe.jpg") become U+FFFD, visibly. The same rule as the API's
  // aiornot.apps.service.responses.display_name.
  const DISPLAY_UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
  const MAX_DISPLAY_NAME = 255;

  function displayName(name) {
    const safe = String(name ?? "").replace(DISPLAY_UNSAFE, "\ufffd");
    const chars = Array.from(safe);
    return chars.length <= MAX_DISPLAY_NAME ? safe : chars.slice(0, MAX_DISPLAY_NAME - 1).join("") + "…";
  }

  function formatBytes(size) {
    if (size < 1024) return `${size} B`;
    if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} KB`;
    return `${(size / (1024 * 1024)).toFixed(1)} MB`;
  }

  function updateButton() {
    $("analyse-button").disabled = !state.file || modelMissing();
  }

  function wireDropzone() {
    const zone = $("dropzone");
    const stop = (event) => {
      event.preventDefault();
      event.stopPropagation();
    };
    ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
      stop(event);
      zone.classList.add("is-dragging");
    }));
    ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, (event) => {
      stop(event);
      zone.classList.remove("is-dragging");
    }));
    zone.addEventListener("drop", (event) => chooseFile(event.dataTransfer && event.dataTransfer.files[0]));
    // A photo dropped beside the zone must not make the browser navigate away from the page.
    ["dragover", "drop"].forEach((name) => window.addEventListener(name, (event) => event.preventDefault()));
  }

  // ------------------------------------------------------------------------------ analysis
  async function analyse() {
    if (!state.file || modelMissing()) return;
    const maxBytes = state.health ? state.health.max_upload_bytes : Infinity;
    if (state.file.size > maxBytes) {
      showError({ code: "file_too_large", local: "tooLargeLocal", vars: { size: formatBytes(state.file.size), ...limits() } });
      return;
    }
    if (state.controller) state.controller.abort(); // a newer choice replaces a running analysis
    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    try {
      const response = await fetch("/v1/detect", { method: "POST", body: buildForm(), headers: authHeaders(), signal: controller.signal });
      const data = await response.json().catch(() => null);
      if (controller !== state.controller) return;
      if (!response.ok) {
        if (response.status === 401) $("api-key-field").hidden = false;
        showError(data && data.error ? data.error : { code: `http_${response.status}`, message: response.statusText, message_ko: response.statusText });
        return;
      }
      state.error = null;
      $("error").hidden = true;
      state.result = data;
      renderResult(data);
      $("status").textContent = t("done", { ms: Math.round(data.elapsed_ms) });
    } catch (error) {
      if (error.name !== "AbortError") showError({ code: "network", local: "networkError" });
    } finally {
      if (controller === state.controller) {
        state.controller = null;
        setBusy(false);
      }
    }
  }

  function buildForm() {
    const form = new FormData();
    // Sent without the original file name: the server needs only the bytes.
    form.append("image", state.file, "upload");
    const idPhoto = $("id-photo").checked;
    form.append("id_photo", idPhoto ? "true" : "false");
    // The face crop's own score is asked for only with ID-photo mode: alone the server refuses it.
    form.append("face_score", idPhoto && $("face-score-check").checked ? "true" : "false");
    form.append("heatmap", "true");
    return form;
  }

  function authHeaders() {
    const key = $("api-key").value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  function setBusy(busy) {
    const button = $("analyse-button");
    button.classList.toggle("is-busy", busy);
    button.disabled = busy || !state.file || modelMissing();
    document.body.setAttribute("aria-busy", String(busy));
    if (busy) $("status").textContent = t("analysing");
  }

  function showError(error) {
    state.error = error;
    renderError(error);
    $("status").textContent = "";
  }

  function renderError(error) {
    $("error").hidden = false;
    $("error-message").textContent = error.local ? t(error.local, error.vars || {}) : localized(error, "message");
    $("error-code").textContent = t("errorCode", { code: error.code });
  }

  // ------------------------------------------------------------------------------ rendering a result
  function renderResult(result) {
    $("empty-state").hidden = true;
    $("result").hidden = false;
    renderVerdict(result);
    renderScale(result);
    renderImages(result);
    renderChecks(result.checks);
    renderExperts(result);
    renderSignals(result);
    renderFacts(result);
  }

  function renderVerdict(result) {
    // A verdict the catalogue does not name (a newer server) is shown as inconclusive: a person checks it.
    const known = Object.keys(state.verdicts).length === 0 || Object.hasOwn(state.verdicts, result.verdict);
    const verdict = known ? result.verdict : "inconclusive";
    $("verdict").dataset.verdict = verdict;
    $("verdict-text").textContent = verdictText(verdict, "label");
    $("verdict-explain").textContent = verdictText(verdict, "explanation");
    // What weakens this verdict without changing it (a strongly compressed JPEG): said beside the verdict, not below.
    const caveats = $("verdict-caveats");
    caveats.replaceChildren(...(result.caveats || []).map((caveat) => {
      const item = document.createElement("li");
      item.dataset.code = caveat.code;
      item.textContent = localized(caveat, "text");
      return item;
    }));
    caveats.hidden = caveats.childElementCount === 0;
  }

  function renderScale(result) {
    const { ai, real } = result.thresholds;
    const percent = (value) => `${(Math.min(1, Math.max(0, value)) * 100).toFixed(2)}%`;
    const fixed = (value) => Number(value).toFixed(2);
    $("zone-real").style.width = percent(real);
    $("zone-band").style.left = percent(real);
    $("zone-band").style.width = percent(Math.max(0, ai - real));
    $("zone-ai").style.width = percent(1 - ai);
    $("scale-marker").style.left = percent(result.score);
    $("scale-marker-label").textContent = fixed(result.score);
    $("score-value").textContent = fixed(result.score);
    $("score-note").textContent = t("scoreNote");
    $("scale").setAttribute("aria-label", t("scaleLabel", { score: fixed(result.score), real: fixed(real), ai: fixed(ai) }));
    $("legend-real").textContent = t("legendReal", { real: fixed(real) });
    $("legend-band").textContent = t("legendBand", { real: fixed(real), ai: fixed(ai) });
    $("legend-ai").textContent = t("legendAi", { ai: fixed(ai) });
    const faceScore = $("face-score");
    faceScore.hidden = typeof result.face_score !== "number";
    if (!faceScore.hidden) faceScore.textContent = t("faceScore", { score: fixed(result.face_score) });
  }

  function renderImages(result) {
    const photo = $("photo");
    const heatmapUrl = typeof result.heatmap === "string" && result.heatmap.startsWith("data:image/png;base64,") ? result.heatmap : null;
    // Browsers cannot show every format (TIFF): the server's overlay then stands in for the photo.
    photo.onerror = () => {
      if (heatmapUrl && photo.src !== heatmapUrl) photo.src = heatmapUrl;
    };
    if (photo.src !== state.photoUrl) photo.src = state.photoUrl || heatmapUrl || "";
    photo.alt = t("photoAlt");
    $("heatmap-figure").hidden = !heatmapUrl;
    if (heatmapUrl) {
      $("heatmap").src = heatmapUrl;
      $("heatmap").alt = t("heatmapAlt");
    }
    renderFaceBox(result);
  }

  function renderFaceBox(result) {
    const box = $("face-box");
    const face = result.face;
    const caption = $("photo-caption");
    box.hidden = !face;
    if (result.checks) caption.textContent = t(face ? "photoCaptionFace" : "photoCaptionNoFace");
    else caption.textContent = t("photoCaption");
    if (!face) return;
    // Percentages of the decoded size: the box follows the photo at any display size.
    box.style.left = `${(face.x / result.width) * 100}%`;
    box.style.top = `${(face.y / result.height) * 100}%`;
    box.style.width = `${(face.w / result.width) * 100}%`;
    box.style.height = `${(face.h / result.height) * 100}%`;
  }

  function renderChecks(checks) {
    $("checks-block").hidden = !checks;
    const body = $("checks-body");
    body.replaceChildren();
    for (const check of checks || []) {
      const status = tag(t(check.passed ? "pass" : "fail"), check.passed ? "tag-pass" : "tag-fail");
      body.append(row([label("check", check.name), status, localized(check, "reason")], ["colCheck", "colResult", "colReason"]));
    }
  }

  function renderExperts(result) {
    const body = $("experts-body");
    body.replaceChildren();
    for (const [name, score] of Object.entries(result.experts || {})) {
      body.append(row([label("expert", name), Number(score).toFixed(3), label("expertWhat", name)], ["colExpert", "colExpertScore", "colExpertWhat"]));
    }
    $("fusion-text").textContent = t("fusionRule", { rule: localized(result, "fusion") });
  }

  function renderSignals(result) {
    const body = $("signals-body");
    body.replaceChildren();
    for (const signal of result.signals || []) {
      const status = tag(t(`status_${signal.status}`), signal.status === "found" || signal.status === "invalid" ? "tag-found" : "tag-muted");
      const strength = tag(t(`strength_${signal.strength}`), `tag-${signal.strength}`);
      body.append(row([label("signal", signal.name), status, strength, localized(signal, "summary")], ["colSignal", "colStatus", "colStrength", "colDetail"]));
    }
    $("rule-text").textContent = localized(result, "rule");
    $("rule-pixel").textContent = t("rulePixel", { verdict: verdictText(result.pixel_verdict, "label") });
  }

  function renderFacts(result) {
    const { ai, real } = result.thresholds;
    const facts = [
      ["factModel", result.model],
      ["factFormat", result.format],
      ["factSize", `${result.width} × ${result.height} px`],
      ["factMd5", result.md5],
      ["factElapsed", `${Math.round(result.elapsed_ms)} ms`],
      ["factThresholds", `real < ${Number(real).toFixed(3)} ≤ inconclusive < ${Number(ai).toFixed(3)} ≤ AI`],
    ];
    if (result.notes && result.notes.length) facts.push(["factNotes", result.notes.join("; ")]);
    const list = $("facts");
    list.replaceChildren();
    for (const [key, value] of facts) {
      const term = document.createElement("dt");
      term.textContent = t(key);
      const detail = document.createElement("dd");
      detail.textContent = value ?? "—";
      list.append(term, detail);
    }
  }

  function label(kind, name) {
    const key = `${kind}_${name}`;
    return STRINGS[state.lang][key] ? t(key) : String(name);
  }

  function tag(text, className) {
    const span = document.createElement("span");
    span.className = `tag ${className}`;
    span.textContent = text;
    return span;
  }

  // `columns` name each cell, so narrow screens can show a row as a labelled card.
  function row(cells, columns) {
    const tr = document.createElement("tr");
    for (const [index, cell] of cells.entries()) {
      const td = document.createElement("td");
      td.dataset.label = t(columns[index]);
      if (cell instanceof Node) td.append(cell);
      else td.textContent = cell ?? "";
      tr.append(td);
    }
    return tr;
  }

  // The face-score option is part of ID-photo mode: shown, and usable, only while that mode is on.
  function showFaceScoreOption() {
    const on = $("id-photo").checked;
    $("face-score-option").hidden = !on;
    $("face-score-check").disabled = !on;
  }

  // ------------------------------------------------------------------------------ start
  function start() {
    for (const button of document.querySelectorAll(".lang-button")) {
      button.addEventListener("click", () => setLanguage(button.dataset.lang));
    }
    $("file-input").addEventListener("change", (event) => chooseFile(event.target.files[0]));
    $("id-photo").addEventListener("change", () => {
      showFaceScoreOption();
      analyse();
    });
    $("face-score-check").addEventListener("change", () => analyse());
    $("upload-form").addEventListener("submit", (event) => {
      event.preventDefault();
      analyse();
    });
    wireDropzone();
    showFaceScoreOption(); // a browser may restore the checkboxes' state on reload
    applyLanguage();
    loadCatalogue();
    loadHealth();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
