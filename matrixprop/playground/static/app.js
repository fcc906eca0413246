// The playground page: settings, the stream from the server, and the drawings.
// Every number shown comes from the matrixprop engine over the WebSocket; this script only
// draws them (no third-party code).
"use strict";

(() => {
  const NEG = [232, 113, 10];
  const POS = [25, 103, 210];
  const WHITE = [255, 255, 255];
  const INK = "#202124";
  const FOCUS = "#7c4dff";
  const MAX_HISTORY = 600;

  const state = {
    options: null,
    socket: null,
    session: null,
    run: null, // the last "reset" message: settings, sizes, data
    frame: null,
    history: { epoch: [], train: [], test: [] },
    target: null, // the neuron in the panel: {layer, neuron, weight?, sample}
    playing: false,
    nodes: [], // nodes[c][i]: {x, y, canvas, button}
    edges: [], // edges[k][j][i]: the visible <line> of W_k[j, i]
    box: 24,
  };

  const $ = (id) => document.getElementById(id);

  // -- colours and numbers -----------------------------------------------------------------
  function mix(a, b, t) {
    return a.map((v, i) => Math.round(v + (b[i] - v) * t));
  }

  // t in [0, 1]: 0 is the negative colour, 0.5 white, 1 the positive colour.
  function colour(t) {
    return t < 0.5 ? mix(NEG, WHITE, t * 2) : mix(WHITE, POS, (t - 0.5) * 2);
  }

  function decode(b64) {
    const text = atob(b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    if (value === 0) return "0";
    const size = Math.abs(value);
    if (size >= 1e-3 && size < 1e5) return String(Number(value.toPrecision(4)));
    return value.toExponential(3);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  // A number in the panel: shown rounded, kept exact in data-value (tests read it).
  function num(key, value) {
    const exact = value === null ? "" : String(value);
    return `<span class="num" data-key="${key}" data-value="${exact}" title="${exact}">${fmt(value)}</span>`;
  }

  function setFigure(id, value, text) {
    const out = $(id);
    out.dataset.value = value === null || value === undefined ? "" : String(value);
    out.textContent = text === undefined ? fmt(value) : text;
  }

  // -- messages ----------------------------------------------------------------------------
  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
  }

  function clearMessage() {
    $("message").hidden = true;
    $("message").textContent = "";
    document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  // Mark the field an error message names ("lr must be ...", "hidden[1] (...) ...").
  function markInvalid(message) {
    const match = /^(\w+)(?:\[(\d+)\])?/.exec(message);
    if (!match) return;
    const [, field, index] = match;
    let el = null;
    if (field === "hidden" && index !== undefined) el = document.querySelector(`[data-role="neurons"][data-index="${index}"]`);
    else if (field === "hidden") el = $("layers");
    else if (field === "lr_multipliers" && index !== undefined) el = document.querySelector(`[data-role="multiplier"][data-index="${index}"]`);
    else el = document.querySelector(`#settings [name="${field}"]`);
    if (el) el.setAttribute("aria-invalid", "true");
  }

  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(message));
    }
  }

  // -- the settings form -------------------------------------------------------------------
  function fillSelect(id, names) {
    const select = $(id);
    select.replaceChildren(...names.map((name) => new Option(name.replaceAll("_", " "), name)));
  }

  function resize(list, n, filler) {
    return Array.from({ length: n }, (_, i) => (i < list.length ? list[i] : filler));
  }

  function currentList(role) {
    return [...document.querySelectorAll(`[data-role="${role}"]`)].map((el) => el.value);
  }

  function readConfig() {
    const batch = $("batch_size");
    let hidden = currentList("neurons");
    let multipliers = currentList("multiplier");
    const wanted = Number($("layers").value);
    if ($("layers").value.trim() === "" || !Number.isInteger(wanted) || wanted < 0 || wanted > 64) {
      hidden = $("layers").value; // let the server say what is wrong with it
    } else if (wanted !== hidden.length) {
      const output = multipliers.pop();
      hidden = resize(hidden, wanted, "4");
      multipliers = [...resize(multipliers, wanted, "1"), output];
    }
    return {
      dataset: $("dataset").value,
      noise: $("noise").value,
      test_fraction: $("test_fraction").value,
      hidden,
      activation: $("activation").value,
      output_activation: $("output_activation").value,
      loss: $("loss").value,
      optimizer: $("optimizer").value,
      lr: $("lr").value,
      lr_multipliers: multipliers,
      batch_size: Number(batch.value) >= Number(batch.max) ? "all" : batch.value,
      l2: $("l2").value,
      seed: $("seed").value,
    };
  }

  function showRangeValues() {
    $("noise-value").textContent = `${Math.round(Number($("noise").value) * 100)}%`;
    $("test_fraction-value").textContent = `${Math.round(Number($("test_fraction").value) * 100)}%`;
    const batch = $("batch_size");
    $("batch_size-value").textContent = Number(batch.value) >= Number(batch.max) ? `all (${batch.max})` : batch.value;
  }

  function writeForm(run) {
    const c = run.config;
    for (const name of ["dataset", "noise", "test_fraction", "activation", "output_activation", "loss", "optimizer", "lr", "l2", "seed"]) {
      $(name).value = c[name];
    }
    $("layers").value = c.hidden.length;
    $("layers").max = state.options.max_layers;
    const batch = $("batch_size");
    batch.max = run.n_train;
    batch.value = c.batch_size === "all" ? run.n_train : Math.min(c.batch_size, run.n_train);
    $("sample").max = run.n_train - 1;
    showRangeValues();
  }

  function configure() {
    send({ type: "configure", config: readConfig() });
  }

  // -- the network view --------------------------------------------------------------------
  function layout(sizes) {
    const area = $("network");
    const width = area.clientWidth;
    const height = area.clientHeight;
    const left = 34;
    const right = 26;
    const tallest = Math.max(...sizes);
    const pitch = Math.min(46, (height - 6) / tallest);
    const box = Math.max(12, Math.min(36, Math.floor(pitch - 5)));
    const columns = sizes.map((n, c) => {
      const x = left + box / 2 + (c * (width - left - right - box)) / (sizes.length - 1);
      return Array.from({ length: n }, (_, i) => ({ x, y: height / 2 + (i - (n - 1) / 2) * pitch }));
    });
    return { columns, box };
  }

  function makeCanvas(size) {
    const canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    return canvas;
  }

  function buildNetwork(run) {
    const area = $("network");
    area.style.height = `${Math.max(200, Math.min(360, Math.max(...run.sizes) * 40 + 24))}px`;
    const svg = $("edges");
    area.querySelectorAll(".node, .input-label").forEach((el) => el.remove());
    svg.replaceChildren();
    const { columns, box } = layout(run.sizes);
    state.box = box;
    const last = run.sizes.length - 1;
    const ns = "http://www.w3.org/2000/svg";
    state.edges = [];
    for (let c = 1; c <= last; c++) {
      const lines = []; // lines[j][i]: the visible line of W_c[j, i]
      const hits = []; // wider transparent lines that take the clicks
      columns[c].forEach((to, j) => {
        const row = [];
        columns[c - 1].forEach((from, i) => {
          const coords = { x1: from.x + box / 2, y1: from.y, x2: to.x - box / 2, y2: to.y };
          const line = document.createElementNS(ns, "line");
          const hit = document.createElementNS(ns, "line");
          for (const [key, value] of Object.entries(coords)) {
            line.setAttribute(key, value);
            hit.setAttribute(key, value);
          }
          line.setAttribute("class", "edge");
          hit.setAttribute("class", "hit");
          const title = document.createElementNS(ns, "title");
          title.textContent = `weight W${c}[${j + 1}, ${i + 1}]`;
          hit.append(title);
          hit.addEventListener("click", () => inspect({ layer: c, neuron: j + 1, weight: i + 1 }));
          svg.append(line);
          row.push(line);
          hits.push(hit);
        });
        lines.push(row);
      });
      svg.append(...hits); // above this layer's visible lines
      state.edges.push(lines);
    }
    state.nodes = columns.map((column, c) =>
      column.map((pos, i) => {
        const canvas = makeCanvas(run.regression ? 32 : 16);
        let el;
        if (c === 0) {
          el = document.createElement("div");
          el.title = `input x${i + 1}`;
          const label = document.createElement("span");
          label.className = "input-label";
          label.textContent = run.regression ? "x" : `x${i + 1}`;
          label.style.left = `${pos.x - box / 2}px`;
          label.style.top = `${pos.y}px`;
          area.append(label);
        } else {
          el = document.createElement("button");
          el.type = "button";
          el.setAttribute("aria-pressed", "false");
          el.setAttribute("aria-label", `Layer ${c} neuron ${i + 1}${c === last ? " (output)" : ""}`);
          el.title = `layer ${c}, neuron ${i + 1}: click for its numbers`;
          el.addEventListener("click", () => inspect({ layer: c, neuron: i + 1 }));
        }
        el.className = "node";
        el.style.left = `${pos.x}px`;
        el.style.top = `${pos.y}px`;
        el.style.width = `${box}px`;
        el.style.height = `${box}px`;
        el.append(canvas);
        area.append(el);
        return { ...pos, canvas, button: c === 0 ? null : el };
      })
    );
    drawInputs(run);
    buildLayerControls(run, columns);
  }

  function buildLayerControls(run, columns) {
    const bar = $("layer-controls");
    bar.replaceChildren();
    const c = run.config;
    const last = run.sizes.length - 1;
    columns.forEach((column, k) => {
      const cell = document.createElement("div");
      cell.className = "layer";
      cell.style.left = `${column[0].x}px`;
      if (k === 0) {
        cell.innerHTML = `<span>input</span><span>${run.sizes[0]}</span>`;
      } else {
        const name = k === last ? "output" : `layer ${k}`;
        let html = `<span>${name}</span>`;
        if (k < last) {
          html += `<input type="number" min="1" max="${state.options.max_neurons}" data-role="neurons" data-index="${k - 1}" value="${c.hidden[k - 1]}" aria-label="Neurons in hidden layer ${k}" title="neurons">`;
        }
        html += `<span class="pair"><span aria-hidden="true">α×</span><input type="text" inputmode="decimal" data-role="multiplier" data-index="${k - 1}" value="${c.lr_multipliers[k - 1]}" aria-label="Learning-rate multiplier of layer ${k}" title="learning-rate multiplier: this layer learns with α × this">`;
        cell.innerHTML = html + "</span>";
      }
      bar.append(cell);
    });
    bar.querySelectorAll("input").forEach((input) => input.addEventListener("change", configure));
  }

  function paintMap(canvas, bytes) {
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(canvas.width, canvas.height);
    for (let p = 0; p < bytes.length; p++) {
      const [r, g, b] = colour(bytes[p] / 255);
      image.data.set([r, g, b, 255], p * 4);
    }
    ctx.putImageData(image, 0, 0);
  }

  // A neuron of a 1-D network: its output along x, as a line.
  function paintLine(canvas, bytes) {
    const ctx = canvas.getContext("2d");
    const size = canvas.width;
    ctx.fillStyle = "white";
    ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = "#dadce0";
    ctx.beginPath();
    ctx.moveTo(0, size / 2);
    ctx.lineTo(size, size / 2);
    ctx.stroke();
    ctx.strokeStyle = INK;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    bytes.forEach((u, p) => {
      const x = (p / (bytes.length - 1)) * size;
      const y = size - 2 - (u / 255) * (size - 4);
      if (p === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }

  function drawInputs(run) {
    state.nodes[0].forEach((node, i) => {
      const n = node.canvas.width;
      const bytes = new Uint8Array(n * n);
      if (run.regression) {
        paintLine(node.canvas, Uint8Array.from({ length: n }, (_, p) => Math.round((p / (n - 1)) * 255)));
        return;
      }
      for (let r = 0; r < n; r++) {
        for (let col = 0; col < n; col++) {
          const t = i === 0 ? col / (n - 1) : 1 - r / (n - 1);
          bytes[r * n + col] = Math.round(t * 255);
        }
      }
      paintMap(node.canvas, bytes);
    });
  }

  function updateNetwork(frame) {
    frame.neurons.forEach((layer, k) => {
      layer.forEach((map, j) => {
        const node = state.nodes[k + 1] && state.nodes[k + 1][j];
        if (!node) return;
        const bytes = decode(map.values);
        if (state.run.regression) paintLine(node.canvas, bytes);
        else paintMap(node.canvas, bytes);
        node.button.title = `layer ${k + 1}, neuron ${j + 1}: its output over the plane (full colour: ${fmt(map.scale)})`;
      });
    });
    frame.weights.forEach((W, k) => {
      W.forEach((row, j) => {
        row.forEach((w, i) => {
          const line = state.edges[k] && state.edges[k][j] && state.edges[k][j][i];
          if (!line) return;
          const size = Math.abs(w ?? 0);
          line.setAttribute("stroke", `rgb(${(w > 0 ? POS : NEG).join(",")})`);
          line.setAttribute("stroke-width", Math.min(7, 0.4 + size * 1.4).toFixed(2));
          line.setAttribute("stroke-opacity", Math.min(1, 0.2 + size * 0.6).toFixed(2));
        });
      });
    });
  }

  // -- the output plot and the loss curves -------------------------------------------------
  function toCanvas(canvas, x, y, yRange) {
    const d = state.run.domain;
    const [low, high] = yRange || [-d, d];
    return [((x + d) / (2 * d)) * canvas.width, ((high - y) / (high - low)) * canvas.height];
  }

  function drawPoints(ctx, canvas, part, yRange, asTest) {
    const { x, y } = state.run[part];
    x.forEach((row, n) => {
      const [px, py] = state.run.regression ? toCanvas(canvas, row[0], y[n], yRange) : toCanvas(canvas, row[0], row[1]);
      ctx.beginPath();
      ctx.arc(px, py, 3.6, 0, 2 * Math.PI);
      ctx.fillStyle = state.run.regression ? `rgb(${POS.join(",")})` : `rgb(${(y[n] ? POS : NEG).join(",")})`;
      ctx.fill();
      ctx.lineWidth = asTest ? 1.6 : 1;
      ctx.strokeStyle = asTest ? INK : "white";
      ctx.stroke();
    });
  }

  function drawOutput(frame) {
    const canvas = $("output");
    const ctx = canvas.getContext("2d");
    const run = state.run;
    const yRange = [-1.5, 1.5];
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (run.regression) {
      ctx.fillStyle = "white";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#dadce0";
      ctx.beginPath();
      ctx.moveTo(0, canvas.height / 2);
      ctx.lineTo(canvas.width, canvas.height / 2);
      ctx.stroke();
    } else {
      const n = frame.output.grid;
      const small = makeCanvas(n);
      const bytes = decode(frame.output.values);
      const sctx = small.getContext("2d");
      const image = sctx.createImageData(n, n);
      for (let p = 0; p < bytes.length; p++) {
        image.data.set([...mix(WHITE, colour(bytes[p] / 255), 0.55), 255], p * 4);
      }
      sctx.putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
    }
    drawPoints(ctx, canvas, "train", yRange, false);
    if ($("show-test").checked) drawPoints(ctx, canvas, "test", yRange, true);
    if (run.regression) {
      ctx.strokeStyle = INK;
      ctx.lineWidth = 2;
      ctx.beginPath();
      frame.output.x.forEach((x, p) => {
        const [px, py] = toCanvas(canvas, x, frame.output.y[p] ?? 0, yRange);
        if (p === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      ctx.stroke();
    }
    if (state.target) {
      const s = state.target.sample;
      const row = run.train.x[s];
      if (row) {
        const [px, py] = run.regression ? toCanvas(canvas, row[0], run.train.y[s], yRange) : toCanvas(canvas, row[0], row[1]);
        ctx.strokeStyle = FOCUS;
        ctx.lineWidth = 2.5;
        ctx.beginPath();
        ctx.arc(px, py, 8, 0, 2 * Math.PI);
        ctx.stroke();
      }
    }
  }

  function record(frame) {
    const h = state.history;
    const last = h.epoch.length ? h.epoch[h.epoch.length - 1] : -1;
    if (frame.epoch === last) return;
    h.epoch.push(frame.epoch);
    h.train.push(frame.train_loss);
    h.test.push(frame.test_loss);
    if (h.epoch.length > MAX_HISTORY) {
      for (const key of ["epoch", "train", "test"]) h[key] = h[key].filter((_, i) => i % 2 === 0 || i === h[key].length - 1);
    }
  }

  function drawLosses() {
    const canvas = $("losses");
    const ctx = canvas.getContext("2d");
    const h = state.history;
    const w = canvas.width;
    const height = canvas.height;
    ctx.clearRect(0, 0, w, height);
    const values = [...h.train, ...h.test].filter((v) => v !== null && Number.isFinite(v));
    if (!values.length) return;
    const top = Math.max(...values) * 1.05 || 1;
    const first = h.epoch[0];
    const span = Math.max(1, h.epoch[h.epoch.length - 1] - first);
    const pad = { l: 4, r: 4, t: 14, b: 14 };
    const px = (e) => pad.l + ((e - first) / span) * (w - pad.l - pad.r);
    const py = (v) => pad.t + (1 - v / top) * (height - pad.t - pad.b);
    ctx.fillStyle = "#5f6368";
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillText(fmt(top), pad.l, 10);
    ctx.textAlign = "right";
    ctx.fillText(`epoch ${h.epoch[h.epoch.length - 1]}`, w - pad.r, height - 3);
    ctx.textAlign = "left";
    for (const [key, style, dash] of [["train", "#80868b", []], ["test", INK, [4, 3]]]) {
      ctx.strokeStyle = style;
      ctx.setLineDash(dash);
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      h[key].forEach((v, i) => {
        if (v === null) return;
        if (i === 0) ctx.moveTo(px(h.epoch[i]), py(v));
        else ctx.lineTo(px(h.epoch[i]), py(v));
      });
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  // -- the neuron panel --------------------------------------------------------------------
  function inspect(target) {
    const sample = Math.max(0, Math.min(Number($("sample").value) || 0, state.run.n_train - 1));
    state.target = { ...target, sample };
    send({ type: "inspect", target: state.target });
  }

  function closeInspector() {
    state.target = null;
    send({ type: "inspect", target: null });
    $("inspector").hidden = true;
    markSelection(null);
  }

  function markSelection(n) {
    state.nodes.forEach((column, c) => column.forEach((node, i) => {
      if (node.button) node.button.setAttribute("aria-pressed", String(Boolean(n) && n.layer === c && n.index === i + 1));
    }));
    document.querySelectorAll("#edges line.selected").forEach((line) => line.classList.remove("selected"));
    if (n && n.edge) {
      const line = state.edges[n.layer - 1]?.[n.index - 1]?.[n.edge.input - 1];
      if (line) line.classList.add("selected");
    }
  }

  function vector(key, values) {
    return `(${values.map((v, i) => num(`${key}.${i}`, v)).join(", ")})`;
  }

  function renderInspection(n) {
    const panel = $("inspector");
    if (!n) {
      panel.hidden = true;
      markSelection(null);
      return;
    }
    const k = n.layer;
    const last = state.run.sizes.length - 1;
    const output = k === last;
    // the layer's input: x, or the outputs a_{k-1} of the layer before; entry i of it
    const prev = k === 1 ? "x" : `a<sub>${k - 1}</sub>`;
    const input = (i) => (k === 1 ? `x<sub>${i}</sub>` : `a<sub>${k - 1},${i}</sub>`);
    $("inspector-title").textContent = `Layer ${k}, neuron ${n.index} (${n.activation}${output ? ", output" : ""})`;
    let html = `<p>Training sample #${n.sample}: x = ${vector("x", n.x)}, y = ${num("y", n.y)}; network output ${vector("output", n.output)}, loss C = ${num("loss", n.loss)}</p>`;
    html += `<p class="eq">z = Σ<sub>i</sub> w<sub>i</sub> ${input("i")} + b = ${num("z", n.z)} &nbsp;&nbsp; a = ${escapeHtml(n.activation)}(z) = ${num("a", n.a)}</p>`;
    if (!output) {
      const terms = n.weights.map((w, i) => `${num(`w_out.${i}`, w)} × ${num(`delta_next.${i}`, n.downstream_deltas[i])}`).join(" + ");
      html += `<p><b>The article's chain rule</b> for this neuron (it feeds ${n.weights.length} neuron(s) of layer ${k + 1}):</p>`;
      html += `<p class="eq">∂C/∂z = f′(z) · Σ<sub>i</sub> w<sub>i</sub> ∂C/∂z<sub>i</sub> = ${num("f_prime", n.f_prime)} × (${terms}) = ${num("delta", n.delta)}</p>`;
      html += `<p><b>Matrix form</b>, entry ${n.index} of δ<sub>${k}</sub> = f′(z<sub>${k}</sub>) ⊙ (W<sub>${k + 1}</sub><sup>T</sup> δ<sub>${k + 1}</sub>) from the engine's backward pass: ${num("matrix_delta", n.matrix_delta)}</p>`;
    } else if (n.f_prime === null) {
      const terms = n.terms.map((t, m) => `${num(`dL_da.${m}`, n.dL_da[m])} × ${num(`softmax_column.${m}`, n.softmax_column[m])}`).join(" + ");
      html += `<p><b>The chain rule</b> through the softmax (its Jacobian mixes the outputs):</p>`;
      html += `<p class="eq">∂C/∂z<sub>${n.index}</sub> = Σ<sub>m</sub> ∂C/∂a<sub>m</sub> · ∂a<sub>m</sub>/∂z<sub>${n.index}</sub> = ${terms} = ${num("delta", n.delta)}</p>`;
      html += `<p><b>Matrix form</b>, entry ${n.index} of δ<sub>${k}</sub> from the engine: ${num("matrix_delta", n.matrix_delta)}</p>`;
    } else {
      html += `<p><b>The chain rule</b> at the output: the loss's derivative times the activation's.</p>`;
      html += `<p class="eq">∂C/∂z = ∂C/∂a · f′(z) = ${num(`dL_da.${n.index - 1}`, n.dL_da[n.index - 1])} × ${num("f_prime", n.f_prime)} = ${num("delta", n.delta)}</p>`;
      html += `<p><b>Matrix form</b>, entry ${n.index} of δ<sub>${k}</sub> = ∂L/∂a<sub>${k}</sub> ⊙ f′(z<sub>${k}</sub>) from the engine: ${num("matrix_delta", n.matrix_delta)}</p>`;
    }
    const diff = Math.abs(n.delta - n.matrix_delta);
    html += `<p class="${n.agrees ? "agree" : "disagree"}" data-key="agrees" data-value="${n.agrees}">${n.agrees ? "✓ They agree" : "✗ They differ"} (|difference| = ${fmt(diff)}), and so do the weight gradients below.</p>`;
    html += `<p>Weights into the neuron: ∂C/∂w = ∂C/∂z · ∂z/∂w = δ · ${input("i")}; update w − α ∂C/∂w with α = ${num("alpha", n.alpha)} (learning rate × this layer's multiplier).</p>`;
    if (n.optimizer !== "sgd") {
      html += `<p class="note">The update shown is the article's plain rule; ${escapeHtml(n.optimizer)} scales each weight's step by its own gradient history.</p>`;
    }
    if (n.edge) {
      const e = n.edge;
      html += `<p class="eq">Selected weight W<sub>${k}</sub>[${n.index}, ${e.input}]: w = ${num("edge.w", e.w)}; ∂C/∂w = ${num("edge.delta", n.delta)} × ${num("edge.a_in", e.a_in)} = ${num("edge.gradient", e.gradient)} (engine: ${num("edge.matrix_gradient", e.matrix_gradient)}); w − α ∂C/∂w = ${num("edge.w_updated", e.w_updated)}</p>`;
    }
    html += `<table><thead><tr><th scope="col">from</th><th scope="col">${input("i")} = ∂z/∂w</th><th scope="col">w</th><th scope="col">∂C/∂w (chain rule)</th><th scope="col">row ${n.index} of δ ${prev}<sup>T</sup> (engine)</th><th scope="col">w − α ∂C/∂w</th><th scope="col"></th></tr></thead><tbody>`;
    n.inputs.forEach((a, i) => {
      const selected = n.edge && n.edge.input === i + 1;
      html += `<tr class="${selected ? "selected" : ""}"><td>${input(i + 1)}</td><td>${num(`inputs.${i}`, a)}</td><td>${num(`W_row.${i}`, n.W_row[i])}</td><td>${num(`gradient.${i}`, n.weight_gradient[i])}</td><td>${num(`matrix_gradient.${i}`, n.matrix_weight_gradient[i])}</td><td>${num(`updated.${i}`, n.W_updated[i])}</td><td><button type="button" data-weight="${i + 1}" aria-label="Show the weight from input ${i + 1}">show</button></td></tr>`;
    });
    html += `<tr><td>bias</td><td>1</td><td>${num("b", n.b)}</td><td>${num("bias_gradient", n.delta)}</td><td>${num("matrix_bias_gradient", n.matrix_delta)}</td><td>${num("b_updated", n.b_updated)}</td><td></td></tr></tbody></table>`;
    $("inspector-body").innerHTML = html;
    $("inspector-body").querySelectorAll("button[data-weight]").forEach((button) => {
      button.addEventListener("click", () => inspect({ layer: n.layer, neuron: n.index, weight: Number(button.dataset.weight) }));
    });
    panel.hidden = false;
    markSelection(n);
  }

  // -- the stream --------------------------------------------------------------------------
  function onReset(message) {
    state.run = message;
    state.history = { epoch: [], train: [], test: [] };
    clearMessage();
    writeForm(message);
    buildNetwork(message);
    setPlaying(message.playing);
    setSpeed(message.epochs_per_frame);
    document.querySelector(".accuracy").hidden = message.regression;
    document.querySelectorAll(".legend .classes").forEach((el) => { el.hidden = message.regression; });
    document.querySelector(".legend .samples").hidden = !message.regression;
    $("command").hidden = true;
    $("command-note").hidden = true;
    if (state.target && state.target.sample >= message.n_train) state.target = null;
  }

  function onFrame(frame) {
    const n = frame.inspection;
    state.frame = frame;
    state.target = n ? { layer: n.layer, neuron: n.index, weight: n.edge ? n.edge.input : undefined, sample: n.sample } : null;
    setPlaying(frame.playing);
    setFigure("epoch", frame.epoch, String(frame.epoch));
    setFigure("rate", frame.epochs_per_second, frame.playing ? String(Math.round(frame.epochs_per_second)) : "0");
    setFigure("train-loss", frame.train_loss);
    setFigure("test-loss", frame.test_loss);
    if (!state.run.regression) {
      setFigure("test-accuracy", frame.test_accuracy, `${(frame.test_accuracy * 100).toFixed(1)}%`);
    }
    record(frame);
    updateNetwork(frame);
    drawOutput(frame);
    drawLosses();
    renderInspection(n);
  }

  function setSpeed(epochsPerFrame) {
    $("speed").value = epochsPerFrame === null ? "" : String(epochsPerFrame);
  }

  function setPlaying(playing) {
    state.playing = playing;
    const button = $("play");
    button.textContent = playing ? "Pause" : "Play";
    button.setAttribute("aria-pressed", String(playing));
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "hello":
        state.session = message.session;
        $("export-model").href = `/api/sessions/${message.session}/model.safetensors`;
        $("export-data").href = `/api/sessions/${message.session}/data.npz`;
        break;
      case "reset":
        onReset(message);
        break;
      case "frame":
        onFrame(message);
        break;
      case "state":
        setPlaying(message.playing);
        setSpeed(message.epochs_per_frame);
        break;
      case "error":
        showMessage(message.message);
        markInvalid(message.message);
        break;
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", () => showMessage("The connection to the playground server was lost: restart it and reload the page."));
    state.socket = socket;
  }

  async function showCommand() {
    const response = await fetch(`/api/sessions/${state.session}/command`);
    const body = await response.json();
    if (!response.ok) {
      showMessage(body.error);
      return;
    }
    $("command").textContent = body.command;
    $("command-note").textContent = body.note;
    $("command").hidden = false;
    $("command-note").hidden = false;
  }

  async function start() {
    const response = await fetch("/api/options");
    state.options = await response.json();
    fillSelect("dataset", state.options.datasets);
    fillSelect("activation", state.options.activations);
    fillSelect("output_activation", state.options.output_activations);
    fillSelect("loss", state.options.losses);
    fillSelect("optimizer", state.options.optimizers);
    $("settings").addEventListener("input", showRangeValues);
    $("settings").addEventListener("change", (event) => {
      if (event.target.closest(".export")) return;
      configure();
    });
    $("settings").addEventListener("submit", (event) => event.preventDefault());
    $("play").addEventListener("click", () => send({ type: state.playing ? "pause" : "play" }));
    $("step").addEventListener("click", () => send({ type: "step" }));
    $("reset").addEventListener("click", () => send({ type: "reset" }));
    $("speed").addEventListener("change", () => {
      const value = $("speed").value;
      send({ type: "speed", epochs_per_frame: value === "" ? null : Number(value) });
    });
    $("show-command").addEventListener("click", showCommand);
    $("close-inspector").addEventListener("click", closeInspector);
    $("sample").addEventListener("change", () => {
      if (state.target) inspect(state.target);
    });
    $("show-test").addEventListener("change", () => state.frame && drawOutput(state.frame));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.target) closeInspector();
    });
    window.addEventListener("resize", () => {
      if (!state.run) return;
      buildNetwork(state.run);
      if (state.frame) onFrame(state.frame);
    });
    connect();
  }

  start().catch((error) => showMessage(`The page could not start: ${error}`));
})();
