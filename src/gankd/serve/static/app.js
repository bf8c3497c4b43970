// The gankd viewer: shows the panels of the chosen model's actions and asks the server for images.
// Each action keeps at most one request in flight; changes made meanwhile send one more request,
// with the latest values, when it returns (dragging a slider never queues a backlog).
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let model = null;
const uploads = {};  // action -> the uploaded image as a data URL

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(action, fields) {
  const response = await fetch(`/api/models/${model.id}/${action}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(fields),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

// run(action) sends the action's request now, or once more after the one in flight.
const running = {};
const again = {};
async function run(action) {
  if (running[action]) { again[action] = true; return; }
  running[action] = true;
  try {
    do {
      again[action] = false;
      const fields = REQUESTS[action]();
      if (!fields) break;
      setStatus(`${action}…`);
      const answer = await call(action, fields);
      $(`${action}-image`).src = answer.image;
      $(`${action}-caption`).textContent = CAPTIONS[action](answer);
      setStatus("");
    } while (again[action]);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    running[action] = false;
  }
}

const integer = (id) => Number.parseInt($(id).value, 10);

// The request of each action from the controls (null: nothing to ask yet).
const REQUESTS = {
  sample: () => {
    const fields = { seed: integer("seed"), truncation: Number($("truncation").value), t: Number($("t").value) };
    if (Number.isNaN(fields.seed)) return null;
    if (fields.t > 0 && !Number.isNaN(integer("toward"))) fields.toward = integer("toward");
    if (model.classes) fields.class_index = integer("class");
    return fields;
  },
  project: () => uploads.project && { image: uploads.project, steps: integer("steps") },
  translate: () => uploads.translate && { image: uploads.translate, direction: $("direction").value },
  age: () => uploads.age && { image: uploads.age, value: Number($("value").value) },
};

const DIRECTIONS = { ab: "A → B", ba: "B → A" };

const CAPTIONS = {
  sample: (a) => `seed ${a.seed}` + (Number($("t").value) > 0 ? `, t ${Number($("t").value).toFixed(2)} toward ${integer("toward")}` : ""),
  project: (a) => `reconstruction (L1 ${a.pixel_l1[0].toFixed(2)} → ${a.pixel_l1[1].toFixed(2)})`,
  translate: (a) => `output (${DIRECTIONS[a.direction]})`,
  age: (a) => `at ${a.value} (the model estimates ${a.estimate.toFixed(1)})`,
};

function choose(index) {
  model = models[index];
  const [low, high] = model.range || [0, 1];
  $("about").textContent = `${model.arch}, ${model.family} family, ${model.resolution}×${model.resolution}`;
  for (const panel of document.querySelectorAll(".panel")) {
    panel.hidden = !model.actions.includes(panel.dataset.action);
  }
  for (const img of document.querySelectorAll(".panel img")) img.removeAttribute("src");
  for (const caption of document.querySelectorAll("figcaption[id]")) caption.textContent = "";
  for (const input of document.querySelectorAll("input[type=file]")) input.value = "";
  for (const action in uploads) delete uploads[action];
  $("project").disabled = true;
  $("class-row").hidden = !model.classes;
  $("class").max = Math.max(model.classes - 1, 0);
  $("direction").replaceChildren(...(model.directions || []).map((d) => new Option(DIRECTIONS[d], d)));
  Object.assign($("value"), { min: low, max: high, step: (model.step || 1) / 10, value: (low + high) / 2 });
  $("value-shown").textContent = $("value").value;
  setStatus("");
  if (model.actions.includes("sample")) run("sample");
}

function upload(action, then) {
  $(`${action}-file`).addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      uploads[action] = reader.result;
      $(`${action}-input`).src = reader.result;
      then();
    };
    reader.readAsDataURL(file);
  });
}

function shown(sliderId, outputId, digits) {
  $(outputId).textContent = Number($(sliderId).value).toFixed(digits);
}

function wire() {
  $("model").addEventListener("change", (event) => choose(Number(event.target.value)));
  for (const id of ["seed", "toward", "class"]) $(id).addEventListener("input", () => run("sample"));
  $("truncation").addEventListener("input", () => { shown("truncation", "truncation-value", 2); run("sample"); });
  $("t").addEventListener("input", () => { shown("t", "t-value", 2); run("sample"); });
  $("random").addEventListener("click", () => {
    $("seed").value = crypto.getRandomValues(new Uint32Array(1))[0];
    run("sample");
  });
  upload("project", () => { $("project").disabled = false; $("project-image").removeAttribute("src"); });
  $("project").addEventListener("click", () => run("project"));
  upload("translate", () => run("translate"));
  $("direction").addEventListener("change", () => run("translate"));
  upload("age", () => run("age"));
  $("value").addEventListener("input", () => { $("value-shown").textContent = $("value").value; run("age"); });
}

async function start() {
  wire();
  try {
    models = (await (await fetch("/api/models")).json()).models;
  } catch (error) {
    setStatus(`cannot reach the server: ${error.message}`, true);
    return;
  }
  $("model").replaceChildren(...models.map((m) => new Option(m.name, m.id)));
  choose(0);
}

start();
