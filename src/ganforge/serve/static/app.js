// ganforge serve: the page. Plain JavaScript, no external resources. Every image comes from the API as a
// PNG; run names are always inserted as text (never as HTML) and URL-encoded.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { runs: [], run: null, info: null, pending: 0, since: 0, seq: {}, urls: {}, upload: null,
                anim: null };

// ---- progress and errors -------------------------------------------------------------------------------
function begin() {
  if (state.pending++ === 0) state.since = performance.now();
  $("busy").hidden = false;
  tick();
}
function end() {
  state.pending = Math.max(0, state.pending - 1);
  if (state.pending === 0) { $("busy").hidden = true; $("busy-text").textContent = "idle"; }
}
function tick() {
  if (state.pending === 0) return;
  const s = ((performance.now() - state.since) / 1000).toFixed(1);
  $("busy-text").textContent = `working… ${state.pending} request${state.pending > 1 ? "s" : ""}, ${s} s`;
  setTimeout(tick, 100);
}
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}
function clearError() { $("error").hidden = true; $("error").textContent = ""; }

async function request(url, options) {
  begin();
  try {
    const r = await fetch(url, options);
    if (!r.ok) {
      let message = `${r.status} ${r.statusText}`;
      try { const body = await r.json(); if (body && body.error) message = body.error; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return r;
  } finally { end(); }
}
async function getJSON(url) { return (await request(url)).json(); }

// Load a PNG into an <img>; only the newest request for that element is shown.
async function loadImage(img, url, options, downloadLink, downloadName) {
  const seq = (state.seq[img.id] || 0) + 1;
  state.seq[img.id] = seq;
  img.classList.add("loading");
  img.dataset.state = "loading";
  try {
    const r = await request(url, options);
    const blob = await r.blob();
    if (seq !== state.seq[img.id]) return null;
    setBlob(img, blob);
    if (downloadLink) {
      downloadLink.href = img.src;
      downloadLink.download = downloadName;
      downloadLink.hidden = false;
    }
    clearError();
    img.dataset.state = "done";
    return r;
  } catch (e) {
    if (seq === state.seq[img.id]) { img.dataset.state = "error"; showError(e.message); }
    return null;
  } finally {
    if (seq === state.seq[img.id]) img.classList.remove("loading");
  }
}
function setBlob(img, blob) {
  if (state.urls[img.id]) URL.revokeObjectURL(state.urls[img.id]);
  const url = URL.createObjectURL(blob);
  state.urls[img.id] = url;
  img.onload = () => { img.dataset.version = String(Number(img.dataset.version || 0) + 1); };
  img.src = url;
}

function runURL(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const qs = q.toString();
  return `/api/runs/${encodeURIComponent(state.run)}/${path}${qs ? "?" + qs : ""}`;
}
function intValue(id, fallback) {
  const v = parseInt($(id).value, 10);
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}

// ---- run list ------------------------------------------------------------------------------------------
async function loadRuns() {
  let data;
  try { data = await getJSON("/api/runs"); } catch (e) { showError(e.message); return; }
  state.runs = data.runs;
  const list = $("runs");
  list.replaceChildren();
  $("runs-empty").hidden = data.runs.length > 0;
  for (const run of data.runs) {
    const li = document.createElement("li");
    li.className = "run-card" + (run.error ? " broken" : "") + (run.name === state.run ? " selected" : "");
    li.dataset.run = run.name;
    li.tabIndex = 0;
    const img = document.createElement("img");
    img.alt = "";
    if (run.thumbnail) { img.src = run.thumbnail; img.loading = "lazy"; }
    const text = document.createElement("div");
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = run.name;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = run.error ? `cannot be used: ${run.error}` : describeRun(run);
    text.append(name, meta);
    li.append(img, text);
    if (!run.error) {
      li.addEventListener("click", () => selectRun(run.name));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") selectRun(run.name); });
    }
    list.append(li);
  }
}
function describeRun(run) {
  const parts = [run.family || "?"];
  if (run.kind === "upscale") parts.push(`${run.scale ? run.scale + "x" : ""} upscaling`);
  else if (run.resolution) parts.push(`${run.resolution} px`);
  if (run.kind === "translate") parts.push("translation");
  if (run.num_classes) parts.push(`${run.num_classes} classes`);
  if (run.step !== null && run.step !== undefined) parts.push(`step ${run.step}`);
  return parts.join(" · ");
}

async function selectRun(name) {
  stopAnimation();
  state.run = name;
  for (const li of document.querySelectorAll(".run-card")) li.classList.toggle("selected", li.dataset.run === name);
  history.replaceState(null, "", "#run=" + encodeURIComponent(name));
  let info;
  try { info = await getJSON(`/api/runs/${encodeURIComponent(name)}`); } catch (e) { showError(e.message); return; }
  if (state.run !== name) return;
  clearError();
  state.info = info;
  $("intro").hidden = true;
  $("run-head").hidden = false;
  $("run-title").textContent = name;
  $("run-meta").textContent = describeRun(info) + (info.ema ? " · EMA weights" : "");
  for (const id of ["grid-img", "mix-img", "edit-img", "class-sheet-img", "after-img", "before-img"]) {
    $(id).removeAttribute("src");
  }
  $("download-grid").hidden = true;
  $("download-result").hidden = true;
  if (info.kind === "noise") setupNoise(info); else setupImage(info);
}

// ---- noise models --------------------------------------------------------------------------------------
function setupNoise(info) {
  $("noise-panel").hidden = false;
  $("image-panel").hidden = true;
  const cls = $("class");
  cls.replaceChildren(new Option("all (cycled)", ""));
  for (let k = 0; k < (info.num_classes || 0); k++) cls.append(new Option(String(k), String(k)));
  $("class-box").hidden = !info.num_classes;
  $("classes-panel").hidden = !info.num_classes;
  const t = info.truncation, slider = $("trunc");
  if (t.kind === "psi") {
    $("trunc-kind").textContent = "ψ";
    slider.min = "0"; slider.max = "2"; slider.step = "0.05"; slider.value = "1";
  } else {
    $("trunc-kind").textContent = "z threshold";
    slider.min = "0.1"; slider.max = "4"; slider.step = "0.1"; slider.value = "4";
  }
  showTrunc();
  $("space-box").hidden = !info.style;
  $("space").value = "z";
  $("mix-panel").hidden = !info.style;
  $("edit-panel").hidden = !info.style;
  if (info.style) {
    const levels = $("mix-levels");
    levels.replaceChildren(...(info.levels || ["coarse"]).map((l) => new Option(l, l)));
    buildSliders(info.attribute_directions || []);
  }
  generate();
  if (info.style) { mix(); editImage(); }
}
function truncParam() {
  const slider = $("trunc");
  if (state.info.truncation.kind === "psi") return slider.value;
  return Number(slider.value) >= Number(slider.max) ? null : slider.value;  // the top of the scale is "off"
}
function showTrunc() {
  const v = truncParam();
  $("trunc-value").textContent = v === null ? "off" : Number(v).toFixed(2);
}
function classParam() { return $("class").value === "" ? null : $("class").value; }

function generate() {
  const seed = intValue("seed", 0);
  const url = runURL("sample.png", { seed, n: $("count").value, class: classParam(), trunc: truncParam() });
  return loadImage($("grid-img"), url, undefined, $("download-grid"), `${state.run}-seed${seed}.png`);
}
function classSheet() {
  const psi = state.info.truncation.kind === "psi";
  return loadImage($("class-sheet-img"), runURL("classes.png", {
    seed: intValue("seed", 0), per_class: $("per-class").value, trunc: psi ? null : truncParam() }));
}
function mix() {
  return loadImage($("mix-img"), runURL("mix.png", {
    rows: $("mix-rows").value, cols: $("mix-cols").value, levels: $("mix-levels").value,
    psi: $("trunc").value, class: classParam() }));
}

// ---- attribute edits -----------------------------------------------------------------------------------
function buildSliders(names) {
  const box = $("edit-sliders");
  box.replaceChildren();
  $("edit-none").hidden = names.length > 0;
  for (const name of names) {
    const label = document.createElement("label");
    const title = document.createElement("span");
    title.textContent = name;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: "-3", max: "3", step: "0.25", value: "0" });
    input.dataset.direction = name;
    const out = document.createElement("output");
    out.textContent = "0";
    input.addEventListener("input", () => { out.textContent = input.value; debounce("edit", editImage, 150); });
    label.append(title, input, out);
    box.append(label);
  }
}
function editImage() {
  if (!state.info || !state.info.style) return null;
  const strengths = [...document.querySelectorAll("#edit-sliders input")]
    .filter((i) => Number(i.value) !== 0).map((i) => `${i.dataset.direction}:${i.value}`).join(",");
  return loadImage($("edit-img"), runURL("edit.png", {
    seed: intValue("seed", 0), strengths, psi: $("trunc").value, class: classParam() }));
}

// ---- interpolation -------------------------------------------------------------------------------------
function stopAnimation() {
  if (state.anim) { clearInterval(state.anim.timer); state.anim = null; }
  $("interp-pause").disabled = true;
  $("interp-pause").textContent = "Pause";
}
async function interpolate() {
  stopAnimation();
  const psi = state.info.truncation.kind === "psi";
  const url = runURL("interpolate.png", {
    seed_a: intValue("seed-a", 0), seed_b: intValue("seed-b", 1), frames: $("frames").value,
    space: state.info.style ? $("space").value : "z", class: classParam(), trunc: psi ? truncParam() : null });
  let r;
  try { r = await request(url); } catch (e) { showError(e.message); return; }
  const frames = parseInt(r.headers.get("X-Frames"), 10);
  const bitmap = await createImageBitmap(await r.blob());
  clearError();
  const fw = bitmap.width / frames, fh = bitmap.height;
  const canvas = $("interp-canvas"), ctx = canvas.getContext("2d");
  const scale = Math.max(1, Math.floor(256 / Math.max(fw, fh)));
  canvas.width = fw * scale; canvas.height = fh * scale;
  canvas.dataset.frames = String(frames);
  ctx.imageSmoothingEnabled = false;
  const anim = { frame: 0, frames, timer: 0, paused: false };
  const draw = () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, anim.frame * fw, 0, fw, fh, 0, 0, canvas.width, canvas.height);
    canvas.dataset.frame = String(anim.frame);
  };
  draw();
  anim.timer = setInterval(() => { if (!anim.paused) { anim.frame = (anim.frame + 1) % frames; draw(); } }, 80);
  state.anim = anim;
  $("interp-pause").disabled = false;
}

// ---- translation and upscaling -------------------------------------------------------------------------
function setupImage(info) {
  $("noise-panel").hidden = true;
  $("image-panel").hidden = false;
  const translate = info.kind === "translate";
  $("process-btn").textContent = translate ? "Translate" : "Upscale";
  const dirs = translate ? (info.directions || []) : [];
  $("direction").replaceChildren(...dirs.map((d) => new Option(d === "AtoB" ? "A → B" : d === "BtoA" ? "B → A" : d, d)));
  $("direction-box").hidden = dirs.length < 2;
  $("image-hint").textContent = translate
    ? `PNG, JPEG, WebP or BMP; translated in ${info.image_size} px tiles.`
    : `PNG, JPEG, WebP or BMP; upscaled ${info.scale}x.`;
  $("process-btn").disabled = !state.upload;
  if (state.upload) showBefore(state.upload);
}
function showBefore(file) {
  setBlob($("before-img"), file);
  $("after-img").removeAttribute("src");
  $("download-result").hidden = true;
}
function processImage() {
  if (!state.upload || !state.info) return null;
  const form = new FormData();
  form.append("image", state.upload);
  const translate = state.info.kind === "translate";
  if (translate && $("direction").value) form.append("direction", $("direction").value);
  const stem = (state.upload.name || "image").replace(/\.[^.]*$/, "");
  return loadImage($("after-img"), runURL(translate ? "translate" : "upscale"), { method: "POST", body: form },
    $("download-result"), `${stem}-${translate ? "translated" : "upscaled"}.png`);
}

// ---- wiring --------------------------------------------------------------------------------------------
const timers = {};
function debounce(key, fn, ms) { clearTimeout(timers[key]); timers[key] = setTimeout(fn, ms); }

function refreshSeedViews() {
  generate();
  if (state.info && state.info.style) editImage();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", loadRuns);
  $("generate").addEventListener("click", generate);
  $("new-seed").addEventListener("click", () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 31));
    refreshSeedViews();
  });
  $("seed").addEventListener("change", refreshSeedViews);
  $("count").addEventListener("change", generate);
  $("class").addEventListener("change", refreshSeedViews);
  $("trunc").addEventListener("input", () => {
    showTrunc();
    debounce("trunc", () => { generate(); if (state.info.style) { mix(); editImage(); } }, 150);
  });
  $("class-sheet-btn").addEventListener("click", classSheet);
  $("interp-btn").addEventListener("click", interpolate);
  $("interp-pause").addEventListener("click", () => {
    if (!state.anim) return;
    state.anim.paused = !state.anim.paused;
    $("interp-pause").textContent = state.anim.paused ? "Play" : "Pause";
  });
  $("mix-btn").addEventListener("click", mix);
  $("mix-levels").addEventListener("change", mix);
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    state.upload = file || null;
    $("process-btn").disabled = !file;
    if (file) showBefore(file);
  });
  $("process-btn").addEventListener("click", processImage);
  $("direction").addEventListener("change", () => { if (state.upload) processImage(); });
  await loadRuns();
  const m = /^#run=(.+)$/.exec(location.hash);
  const wanted = m ? decodeURIComponent(m[1]) : null;
  if (wanted && state.runs.some((r) => r.name === wanted && !r.error)) selectRun(wanted);
});
