// aiornot web page: pick or drop a photo, send it to /v1/detect, show the verdict and the evidence.
// Korean by default, English on request (the choice is kept in localStorage). Everything the server
// returns is written with textContent, never innerHTML: metadata inside a photo is untrusted text.
"use strict";

(() => {
  // ------------------------------------------------------------------------------ UI strings
  const STRINGS = {
    ko: {
      pageTitle: "AI 생성 사진 판별 · aiornot",
      skipLink: "본문 바로가기",
      kicker: "신원 확인 업무 지원 도구",
      title: "AI 생성 사진 판별",
      privacy: "사진은 서버 메모리에서만 분석되며 저장하거나 기록하지 않습니다. 분석이 끝나면 즉시 폐기됩니다.",
      uploadTitle: "사진 올리기",
      dropMain: "사진을 이곳에 끌어다 놓거나 눌러서 선택하세요",
      dropSub: "JPEG · PNG · WEBP · BMP · TIFF · GIF, 최대 {maxMb} MB",
      optionsLegend: "분석 옵션",
      idPhoto: "증명사진 (ID photo)",
      idPhotoHint: "얼굴 위치를 표시하고 증명사진 규격을 함께 검사합니다.",
      apiKey: "API 키",
      apiKeyHint: "이 서버는 API 키가 필요합니다. 관리자에게 받은 키를 입력하세요.",
      analyse: "분석하기",
      analysing: "분석 중입니다… 사진은 저장되지 않습니다.",
      done: "분석을 마쳤습니다. ({ms} ms)",
      errorTitle: "분석할 수 없습니다",
      errorCode: "오류 코드: {code}",
      networkError: "서버에 연결할 수 없습니다. 네트워크 상태를 확인한 뒤 다시 시도해 주세요.",
      tooLargeLocal: "파일이 너무 큽니다({size}). 최대 {maxMb} MB까지 올릴 수 있습니다.",
      noModel: "판별 모델이 준비되지 않아 지금은 분석할 수 없습니다. 관리자에게 문의해 주세요.",
      howTitle: "이용 안내",
      how1: "확인할 사진을 선택합니다. 증명사진이면 ‘증명사진’을 체크합니다.",
      how2: "판정, 점수, 히트맵, 출처 정보(메타데이터)를 확인합니다.",
      how3: "‘AI 생성’이나 ‘판단 보류’이면 신청인 본인 확인 등 담당자가 직접 확인합니다.",
      resultTitle: "판별 결과",
      emptyState: "사진을 올리면 이곳에 판별 결과가 표시됩니다.",
      verdictCaption: "판정",
      caution: "‘AI 생성’ 판정은 담당자가 사진과 신청인을 직접 확인해야 할 이유일 뿐, 위조의 증거가 아닙니다. ‘실제 사진’ 판정도 진본임을 보증하지 않습니다.",
      scoreTitle: "점수 (AI일 확률)",
      scoreNote: "0에 가까울수록 실제 사진, 1에 가까울수록 AI 생성 쪽입니다.",
      scaleLabel: "점수 {score}: 실제 사진 기준 {real} 미만, AI 기준 {ai} 이상, 그 사이는 판단 보류",
      axisReal: "← 실제 사진 쪽",
      axisAi: "AI 쪽 →",
      legendReal: "실제 사진 (< {real})",
      legendBand: "판단 보류 ({real} – {ai})",
      legendAi: "AI 생성 (≥ {ai})",
      faceScore: "얼굴 영역만의 점수: {score} — 참고용이며 판정에는 쓰이지 않습니다 (처음 보는 출처의 실제 인물 사진에서 신뢰할 수 없음이 측정됨)",
      imagesTitle: "사진과 히트맵",
      photoCaption: "올린 사진",
      photoCaptionFace: "올린 사진 (파란 상자: 찾은 얼굴)",
      photoCaptionNoFace: "올린 사진 (얼굴을 찾지 못했습니다)",
      photoAlt: "올린 사진",
      heatmapAlt: "AI 생성 흔적 히트맵",
      faceLabel: "얼굴",
      heatmapCaption: "히트맵: 밝을수록 AI 생성 흔적이 강하게 보인 영역입니다.",
      heatLow: "낮음",
      heatHigh: "높음",
      checksTitle: "증명사진 규격 검사",
      checksNote: "규격 검사는 증명사진으로 쓸 수 있는지를 보는 것이며, AI 생성 여부의 증거가 아닙니다.",
      colCheck: "항목",
      colResult: "결과",
      colReason: "사유",
      pass: "통과",
      fail: "미통과",
      signalsTitle: "출처 정보(메타데이터) 증거",
      colSignal: "신호",
      colStatus: "상태",
      colStrength: "강도",
      colDetail: "내용",
      absenceNote: "메타데이터가 없다는 것은 실제 사진이라는 증거가 아닙니다. 메신저 전송, 화면 캡처, 다시 저장하면 대부분 사라집니다.",
      expertsTitle: "전문가별 점수",
      colExpert: "전문가",
      colExpertScore: "P(AI)",
      colExpertWhat: "보는 것",
      expert_semantic: "의미 (CLIP)",
      expert_forensic: "포렌식 (CNN)",
      expertWhat_semantic: "사전학습된 CLIP 특징: 사진 전체가 어떻게 보이는지",
      expertWhat_forensic: "원본 해상도 타일의 픽셀 수준 흔적 (업샘플링, 디모자이킹)",
      fusionRule: "결합 규칙: {rule}",
      ruleTitle: "판정 규칙",
      rulePixel: "픽셀 분석만의 판정: {verdict}",
      detailsTitle: "기술 정보",
      factModel: "모델",
      factFormat: "파일 형식",
      factSize: "크기",
      factMd5: "MD5",
      factElapsed: "처리 시간",
      factNotes: "디코더 참고",
      factThresholds: "판정 기준",
      footerNote: "이 도구는 담당자의 판단을 돕기 위한 참고 자료를 제공합니다. 최종 판단은 담당자가 합니다.",
      apiDocs: "API 문서",
      status_found: "발견",
      status_not_found: "없음",
      status_invalid: "유효하지 않음",
      status_error: "확인 불가",
      status_unavailable: "검사 모듈 없음",
      strength_strong_ai: "강한 AI 증거",
      strength_weak_ai: "약한 AI 단서",
      strength_weak_camera: "카메라 정보(참고용)",
      strength_none: "해당 없음",
      signal_c2pa: "C2PA 콘텐츠 출처 인증",
      signal_xmp_source_type: "IPTC 디지털 소스 유형 (XMP)",
      signal_generator_metadata: "생성 도구 메타데이터",
      signal_sd_watermark: "Stable Diffusion 워터마크",
      signal_camera_exif: "카메라 EXIF",
      check_single_face: "얼굴이 1개",
      check_face_height: "얼굴 크기",
      check_face_centred: "얼굴 가운데 위치",
      check_background_light: "밝은 배경",
      check_background_uniform: "균일한 배경",
      check_image_resolution: "사진 해상도",
      check_face_resolution: "얼굴 해상도",
      check_head_roll: "머리 기울기",
    },
    en: {
      pageTitle: "AI-generated photo check · aiornot",
      skipLink: "Skip to content",
      kicker: "Identity verification support tool",
      title: "AI-generated photo check",
      privacy: "Photos are analysed in the server's memory only and are never stored or logged. They are discarded as soon as the analysis ends.",
      uploadTitle: "Upload a photo",
      dropMain: "Drop a photo here or click to choose one",
      dropSub: "JPEG · PNG · WEBP · BMP · TIFF · GIF, up to {maxMb} MB",
      optionsLegend: "Analysis options",
      idPhoto: "ID photo (증명사진)",
      idPhotoHint: "Marks the face and checks the ID-photo requirements as well.",
      apiKey: "API key",
      apiKeyHint: "This server needs an API key. Enter the key your administrator gave you.",
      analyse: "Analyse",
      analysing: "Analysing… the photo is not stored.",
      done: "Analysis finished. ({ms} ms)",
      errorTitle: "The photo could not be analysed",
      errorCode: "Error code: {code}",
      networkError: "Cannot reach the server. Check the network and try again.",
      tooLargeLocal: "The file is too large ({size}). The limit is {maxMb} MB.",
      noModel: "No detection model is loaded, so photos cannot be analysed now. Please contact the administrator.",
      howTitle: "How to use",
      how1: "Choose the photo to check. Tick ‘ID photo’ for ID photos.",
      how2: "Read the verdict, the score, the heatmap and the provenance (metadata) evidence.",
      how3: "For ‘AI-generated’ or ‘Inconclusive’, a person checks in person, e.g. verifies the applicant’s identity.",
      resultTitle: "Result",
      emptyState: "The result will appear here once you upload a photo.",
      verdictCaption: "Verdict",
      caution: "An ‘AI-generated’ verdict is a reason for a person to check the photo and the applicant, not proof of forgery. A ‘Real photo’ verdict does not guarantee authenticity either.",
      scoreTitle: "Score (probability of AI)",
      scoreNote: "Closer to 0: real photo; closer to 1: AI-generated.",
      scaleLabel: "Score {score}: real below {real}, AI at or above {ai}, inconclusive in between",
      axisReal: "← real photo",
      axisAi: "AI →",
      legendReal: "Real photo (< {real})",
      legendBand: "Inconclusive ({real} – {ai})",
      legendAi: "AI-generated (≥ {ai})",
      faceScore: "Score of the face area alone: {score} — for information only, not part of the verdict (measured unreliable on real portraits from unseen sources)",
      imagesTitle: "Photo and heatmap",
      photoCaption: "Uploaded photo",
      photoCaptionFace: "Uploaded photo (blue box: the face found)",
      photoCaptionNoFace: "Uploaded photo (no face found)",
      photoAlt: "The uploaded photo",
      heatmapAlt: "Heatmap of AI-generation traces",
      faceLabel: "Face",
      heatmapCaption: "Heatmap: the brighter, the stronger the AI-generation traces seen there.",
      heatLow: "low",
      heatHigh: "high",
      checksTitle: "ID-photo requirements",
      checksNote: "These checks say whether the photo is usable as an ID photo; they are not evidence of AI generation.",
      colCheck: "Check",
      colResult: "Result",
      colReason: "Reason",
      pass: "Pass",
      fail: "Fail",
      signalsTitle: "Provenance (metadata) evidence",
      colSignal: "Signal",
      colStatus: "Status",
      colStrength: "Strength",
      colDetail: "Details",
      absenceNote: "Missing metadata is not evidence of a real photo: messengers, screenshots and re-saving remove most of it.",
      expertsTitle: "Scores of each expert",
      colExpert: "Expert",
      colExpertScore: "P(AI)",
      colExpertWhat: "What it reads",
      expert_semantic: "Semantic (CLIP)",
      expert_forensic: "Forensic (CNN)",
      expertWhat_semantic: "frozen pretrained CLIP features: how the whole picture looks",
      expertWhat_forensic: "pixel-level traces in native-resolution tiles (up-sampling, demosaicing)",
      fusionRule: "Fusion rule: {rule}",
      ruleTitle: "Decision rule",
      rulePixel: "Verdict of the pixels alone: {verdict}",
      detailsTitle: "Technical details",
      factModel: "Model",
      factFormat: "File format",
      factSize: "Size",
      factMd5: "MD5",
      factElapsed: "Processing time",
      factNotes: "Decoder notes",
      factThresholds: "Thresholds",
      footerNote: "This tool gives reference information to support the officer’s judgement. The officer makes the final decision.",
      apiDocs: "API documentation",
      status_found: "Found",
      status_not_found: "Not found",
      status_invalid: "Invalid",
      status_error: "Could not check",
      status_unavailable: "Check not installed",
      strength_strong_ai: "Strong AI evidence",
      strength_weak_ai: "Weak AI hint",
      strength_weak_camera: "Camera hint (context only)",
      strength_none: "None",
      signal_c2pa: "C2PA content credentials",
      signal_xmp_source_type: "IPTC digital source type (XMP)",
      signal_generator_metadata: "Generator metadata",
      signal_sd_watermark: "Stable Diffusion watermark",
      signal_camera_exif: "Camera EXIF",
      check_single_face: "Exactly one face",
      check_face_height: "Face size",
      check_face_centred: "Face centred",
      check_background_light: "Light background",
      check_background_uniform: "Plain background",
      check_image_resolution: "Image resolution",
      check_face_resolution: "Face resolution",
      check_head_roll: "Head tilt",
    },
  };
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
    form.append("id_photo", $("id-photo").checked ? "true" : "false");
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

  // ------------------------------------------------------------------------------ start
  function start() {
    for (const button of document.querySelectorAll(".lang-button")) {
      button.addEventListener("click", () => setLanguage(button.dataset.lang));
    }
    $("file-input").addEventListener("change", (event) => chooseFile(event.target.files[0]));
    $("id-photo").addEventListener("change", () => analyse());
    $("upload-form").addEventListener("submit", (event) => {
      event.preventDefault();
      analyse();
    });
    wireDropzone();
    applyLanguage();
    loadCatalogue();
    loadHealth();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
