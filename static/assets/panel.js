// The staff panel: signs in against the REST API, shows the analytics of a date
// range (key figures, three charts, the top queries and products, the latest
// ratings), the latest orders (new ones arrive live over Socket.IO) and downloads
// the exports. The session token lives in sessionStorage, so it ends with the tab;
// any 401 sends the page back to the sign-in form.
"use strict";

(() => {
  const TOKEN_KEY = "tendero_panel_token";
  const USER_KEY = "tendero_panel_usuario";
  const EXPIRES_KEY = "tendero_panel_vence";
  const EXPIRED = "La sesión venció; vuelve a entrar.";
  const EMPTY = "Sin datos en estas fechas.";
  const NO_CONNECTION = "No se pudo conectar con el servidor. Revisa la conexión e intenta de nuevo.";
  const MAX_ORDERS = 10;
  const NEW_MARK_MS = 8000;

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const accessSection = $("acceso-seccion");
  const accessForm = $("acceso");
  const emailInput = $("email");
  const passwordInput = $("password");
  const accessError = $("acceso-error");
  const enterButton = $("entrar");
  const panel = $("panel");
  const session = $("sesion");
  const userLabel = $("usuario");
  const live = $("en-vivo");
  const filters = $("filtros");
  const fromInput = $("desde");
  const toInput = $("hasta");
  const byInput = $("por");
  const refreshButton = $("actualizar");
  const notice = $("aviso");
  const rangeLabel = $("rango");
  const ordersList = $("pedidos");
  const newCounter = $("nuevos");
  const downloadStatus = $("descarga");

  // ---- Formats (es-CO) ----------------------------------------------------

  const MONTHS = ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"];
  const integerFormat = new Intl.NumberFormat("es-CO", { maximumFractionDigits: 0 });
  const oneDecimal = new Intl.NumberFormat("es-CO", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const pesos = new Intl.NumberFormat("es-CO", {
    style: "currency",
    currency: "COP",
    minimumFractionDigits: 0,
    maximumFractionDigits: 0,
  });
  const pesosWithCents = new Intl.NumberFormat("es-CO", {
    style: "currency",
    currency: "COP",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });
  const compact = new Intl.NumberFormat("es-CO", { notation: "compact", maximumFractionDigits: 1 });

  const isNumber = (value) => value !== null && value !== undefined && value !== "" && Number.isFinite(Number(value));

  function integer(value) {
    return isNumber(value) ? integerFormat.format(Number(value)) : "—";
  }

  function decimal(value) {
    return isNumber(value) ? oneDecimal.format(Number(value)) : "—";
  }

  /** A ratio 0..1 as «12,3 %»; «—» when there is none. */
  function percent(ratio) {
    return isNumber(ratio) ? oneDecimal.format(Number(ratio) * 100) + " %" : "—";
  }

  /** Pesos like the chat page shows prices, «$1.299.000»; cents only when there are some. */
  function money(value) {
    if (!isNumber(value)) return "—";
    const amount = Number(value);
    const cents = Math.round(Math.abs(amount) * 100) % 100 !== 0;
    return (cents ? pesosWithCents : pesos)
      .formatToParts(amount)
      .filter((part) => part.type !== "literal" || part.value.trim() !== "")
      .map((part) => part.value)
      .join("");
  }

  const pad = (n) => String(n).padStart(2, "0");
  const isoDate = (date) => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;

  /** A calendar date "YYYY-MM-DD", read as a local date (never shifted by the time zone). */
  function parseDay(text) {
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
    return match ? new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : null;
  }

  function shortDay(text) {
    const date = parseDay(text);
    return date ? `${date.getDate()} ${MONTHS[date.getMonth()]}` : String(text);
  }

  function longDay(text) {
    const date = parseDay(text);
    return date ? `${date.getDate()} ${MONTHS[date.getMonth()]} ${date.getFullYear()}` : String(text);
  }

  /** An instant (RFC 3339) in the browser's time zone: «7 dic 2026, 14:05». */
  function dateTime(text) {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) return text ? String(text) : "—";
    return `${date.getDate()} ${MONTHS[date.getMonth()]} ${date.getFullYear()}, ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  const plural = (n, one, many) => `${integer(n)} ${Number(n) === 1 ? one : many}`;
  const percentOrNone = (ratio) => (isNumber(ratio) ? percent(ratio) : "sin datos");

  // ---- Session ------------------------------------------------------------

  let token = null;
  let user = null;
  let expiryTimer = null;
  let socket = null;
  let reconnectTimer = null;
  /** Bumped by every load and by signing out: an answer of an older one is dropped. */
  let generation = 0;
  let loads = 0;

  class ApiError extends Error {
    constructor(message, status, code, field) {
      super(message);
      this.status = status;
      this.code = code || null;
      this.field = field || null;
    }
  }

  /** The error an API answer carries (`{"error": {"code", "message", ...}}`). */
  async function errorOf(response) {
    let detail = null;
    try {
      detail = (await response.json()).error;
    } catch (err) {
      detail = null;
    }
    const message = detail && detail.message
      ? detail.message
      : `El servidor respondió con un error (HTTP ${response.status}).`;
    return new ApiError(message, response.status, detail && detail.code, detail && detail.field);
  }

  /** An authenticated request; a 401 ends the session. */
  async function api(path, accept = "application/json") {
    const sent = token;
    if (!sent) throw new ApiError(EXPIRED, 401, "unauthorized");
    let response;
    try {
      response = await fetch(path, {
        headers: { Accept: accept, Authorization: "Bearer " + sent },
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(NO_CONNECTION, 0, "network");
    }
    if (response.status === 401) {
      if (token === sent) signOut(EXPIRED);
      throw new ApiError(EXPIRED, 401, "unauthorized");
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  const UNREADABLE = "El servidor envió datos que el panel no entiende.";

  async function getJson(path) {
    const response = await api(path);
    try {
      return await response.json();
    } catch (err) {
      throw new ApiError(UNREADABLE, response.status, "unreadable");
    }
  }

  function showError(message) {
    notice.textContent = message;
    notice.hidden = false;
    body.dataset.error = message;
  }

  function clearError() {
    notice.textContent = "";
    notice.hidden = true;
    delete body.dataset.error;
    fromInput.removeAttribute("aria-invalid");
    toInput.removeAttribute("aria-invalid");
    byInput.removeAttribute("aria-invalid");
  }

  function signIn(answer, remember) {
    token = answer.token;
    user = answer.usuario || null;
    if (remember) {
      const expires = Date.now() + Math.max(0, Number(answer.expires_in) || 0) * 1000;
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(USER_KEY, JSON.stringify(user));
      if (Number(answer.expires_in) > 0) sessionStorage.setItem(EXPIRES_KEY, String(expires));
      else sessionStorage.removeItem(EXPIRES_KEY);
    }
    const expires = Number(sessionStorage.getItem(EXPIRES_KEY));
    clearTimeout(expiryTimer);
    if (expires > 0) {
      // setTimeout takes at most 2^31 - 1 ms.
      expiryTimer = setTimeout(() => signOut(EXPIRED), Math.min(Math.max(0, expires - Date.now()), 2147483647));
    }
    userLabel.textContent = user ? `${user.nombre || user.email} (${user.rol})` : "";
    session.hidden = false;
    accessSection.hidden = true;
    accessError.textContent = "";
    passwordInput.value = "";
    panel.hidden = false;
    newOrders = 0;
    liveOrders.clear();
    showNewCounter();
    panel.focus();
    load();
    connectLive();
  }

  /** Back to the sign-in form, forgetting the token and everything shown. */
  function signOut(message) {
    generation += 1;
    token = null;
    user = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(EXPIRES_KEY);
    clearTimeout(expiryTimer);
    disconnectLive();
    clearError();
    resetDashboard();
    panel.hidden = true;
    panel.removeAttribute("aria-busy");
    refreshButton.disabled = false;
    session.hidden = true;
    userLabel.textContent = "";
    accessSection.hidden = false;
    accessError.textContent = message || "";
    setInvalid(false);
    enterButton.disabled = false;
    emailInput.focus();
  }

  function setInvalid(invalid) {
    for (const input of [emailInput, passwordInput]) {
      if (invalid) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  accessForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    accessError.textContent = "";
    setInvalid(false);
    const email = emailInput.value.trim();
    const password = passwordInput.value;
    if (!email || !password) {
      accessError.textContent = "Escribe tu correo y tu contraseña.";
      (email ? passwordInput : emailInput).focus();
      return;
    }
    enterButton.disabled = true;
    accessForm.setAttribute("aria-busy", "true");
    try {
      let response;
      try {
        response = await fetch("/api/auth/login", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ email, password }),
        });
      } catch (err) {
        throw new ApiError(NO_CONNECTION, 0, "network");
      }
      if (response.status === 401) {
        setInvalid(true);
        throw new ApiError("Correo o contraseña incorrectos.", 401);
      }
      if (response.status === 429) {
        throw new ApiError("Demasiados intentos. Espera un momento y vuelve a intentarlo.", 429);
      }
      if (!response.ok) throw await errorOf(response);
      const answer = await response.json();
      if (!answer || !answer.token) throw new ApiError("El servidor no entregó una sesión.", response.status);
      signIn(answer, true);
    } catch (err) {
      accessError.textContent = err instanceof ApiError ? err.message : UNREADABLE;
      passwordInput.select();
    } finally {
      enterButton.disabled = false;
      accessForm.removeAttribute("aria-busy");
    }
  });

  $("salir").addEventListener("click", () => signOut(""));

  // ---- Filters and loading ---------------------------------------------------

  function defaultRange() {
    const today = new Date();
    toInput.value = isoDate(today);
    fromInput.value = isoDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29));
    byInput.value = "dia";
  }

  /** The query string of the chosen dates (and grouping), empty fields left out. */
  function rangeQuery(extra) {
    const params = new URLSearchParams();
    if (fromInput.value) params.set("desde", fromInput.value);
    if (toInput.value) params.set("hasta", toInput.value);
    for (const [key, value] of Object.entries(extra || {})) params.set(key, value);
    return params.toString();
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });

  /** Fetches everything the panel shows; `data-cargado` counts the loads that
   * finished without an error. */
  async function load() {
    if (!token) return;
    const mine = ++generation;
    clearError();
    panel.setAttribute("aria-busy", "true");
    refreshButton.disabled = true;
    const range = rangeQuery();
    const requests = [
      getJson("/api/analitica/serie?" + rangeQuery({ por: byInput.value })),
      getJson(`/api/analitica/consultas?${range}&orden=populares&limite=10`),
      getJson(`/api/analitica/consultas?${range}&orden=sin_resultados&limite=10`),
      getJson(`/api/analitica/consultas?${range}&orden=sin_clics&limite=10`),
      getJson(`/api/analitica/productos?${range}&orden=clics&limite=10`),
      getJson(`/api/analitica/valoraciones?${range}&limite=10`),
      getJson(`/api/pedidos?limit=${MAX_ORDERS}`),
    ];
    const renderers = [
      renderSeries,
      (answer) => renderQueries("consultas-populares", answer),
      (answer) => renderQueries("consultas-sin-resultados", answer),
      (answer) => renderQueries("consultas-sin-clics", answer),
      renderProducts,
      renderRatings,
      renderOrders,
    ];
    const results = await Promise.allSettled(requests);
    if (mine !== generation) return;
    let failure = null;
    results.forEach((result, i) => {
      if (result.status === "fulfilled") {
        try {
          renderers[i](result.value);
        } catch (err) {
          failure = failure || new ApiError(UNREADABLE, 0, "unreadable");
          console.warn("No se pudo mostrar una respuesta:", err);
        }
      } else if (!failure) {
        failure = result.reason;
      }
    });
    panel.removeAttribute("aria-busy");
    refreshButton.disabled = false;
    if (failure) {
      showError(failure.message);
      const field = { desde: fromInput, hasta: toInput, por: byInput }[failure.field];
      if (field) field.setAttribute("aria-invalid", "true");
      return;
    }
    loads += 1;
    body.dataset.cargado = String(loads);
  }

  // ---- Key figures --------------------------------------------------------

  function setFigure(name, value, detail) {
    document.querySelector(`[data-cifra="${name}"]`).textContent = value;
    const note = $("detalle-" + name);
    if (note && detail !== undefined) note.textContent = detail;
  }

  function renderSeries(serie) {
    const total = serie.total || {};
    const rated = (Number(total.valoraciones_utiles) || 0) + (Number(total.valoraciones_no_utiles) || 0);
    setFigure("busquedas", integer(total.busquedas), `${integer(total.sin_resultados)} sin resultados`);
    setFigure("ctr", percent(total.ctr), isNumber(total.posicion_media_clic)
      ? `Posición media del clic: ${decimal(total.posicion_media_clic)}`
      : `${plural(total.busquedas_con_clic, "búsqueda", "búsquedas")} con clic`);
    setFigure("clics", integer(total.clics), `${integer(total.clics_respuestas)} en respuestas del asistente`);
    setFigure("pedidos", integer(total.pedidos),
      `${integer(total.pedidos_busqueda)} desde búsquedas · ${integer(total.pedidos_conversacion)} desde conversaciones`);
    setFigure("ingresos", money(total.ingresos),
      `${money(total.ingresos_busqueda)} desde búsquedas · ${money(total.ingresos_conversacion)} desde conversaciones`);
    setFigure("conversion_busquedas", percent(total.conversion_busquedas));
    setFigure("conversion_conversaciones", percent(total.conversion_conversaciones));
    setFigure("tasa_util", percent(total.tasa_util),
      rated ? `${integer(total.valoraciones_utiles)} de ${plural(rated, "valoración", "valoraciones")}` : "Sin valoraciones");
    const by = serie.por === "semana" ? "por semana" : "por día";
    rangeLabel.textContent = serie.desde && serie.hasta
      ? `Del ${longDay(serie.desde)} al ${longDay(serie.hasta)}, ${by}.`
      : "";
    drawCharts(serie);
  }

  // ---- Charts -------------------------------------------------------------

  const charts = {};
  const COLORS = {
    azul: "#0b5cad",
    celeste: "#8db8e8",
    naranja: "#b35900",
    verde: "#2e7d32",
    morado: "#6a3d9a",
  };

  function chartDefaults() {
    if (typeof Chart !== "function") return false;
    const styles = getComputedStyle(document.documentElement);
    Chart.defaults.color = styles.getPropertyValue("--texto").trim() || "#1b1f24";
    Chart.defaults.font.family = styles.fontFamily;
    Chart.defaults.font.size = 12;
    Chart.defaults.maintainAspectRatio = false;
    if (window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches) {
      Chart.defaults.animation = false;
    } else {
      Chart.defaults.animation.duration = 300;
    }
    return true;
  }
  const chartsAvailable = chartDefaults();

  function periodTitle(periodo, por) {
    return por === "semana" ? `Semana del ${longDay(periodo)}` : longDay(periodo);
  }

  /** Shared options: legend below, one tooltip for all series of a period. */
  function baseOptions(por, yTick, tooltipValue) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: {
          position: "bottom",
          labels: { boxWidth: 14, usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex },
        },
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? periodTitle(items[0].chart.$periodos[items[0].dataIndex], por) : ""),
            label: (item) => `${item.dataset.label}: ${tooltipValue(item.raw, item.dataset)}`,
          },
        },
      },
      scales: {
        x: { ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 8 }, grid: { display: false } },
        y: { beginAtZero: true, ticks: { callback: yTick, precision: 0 } },
      },
    };
  }

  function line(label, data, color, extra) {
    return {
      type: "line",
      label,
      data,
      borderColor: color,
      backgroundColor: color,
      borderWidth: 2,
      pointRadius: 2,
      pointHoverRadius: 4,
      tension: 0.25,
      spanGaps: false,
      ...extra,
    };
  }

  function bar(label, data, color, extra) {
    return { type: "bar", label, data, backgroundColor: color, borderColor: color, borderWidth: 0, ...extra };
  }

  const asPercent = (ratio) => (isNumber(ratio) ? Math.round(Number(ratio) * 1000) / 10 : null);
  const asNumber = (value) => (isNumber(value) ? Number(value) : 0);

  function chartSpecs(serie) {
    const points = serie.puntos || [];
    const field = (name, map) => points.map((p) => map(p[name]));
    const por = serie.por;
    const total = serie.total || {};
    return {
      "g-actividad": {
        config: () => {
          const options = baseOptions(por, (v) => integer(v), (v) => integer(v));
          options.scales.y1 = {
            position: "right",
            beginAtZero: true,
            grid: { drawOnChartArea: false },
            ticks: { precision: 0, callback: (v) => integer(v) },
            title: { display: true, text: "Pedidos" },
          };
          return { type: "bar", data: { labels: [], datasets: [] }, options };
        },
        datasets: [
          bar("Búsquedas", field("busquedas", asNumber), COLORS.celeste, { order: 3 }),
          line("Clics", field("clics", asNumber), COLORS.azul, { order: 2, pointStyle: "rect" }),
          line("Pedidos", field("pedidos", asNumber), COLORS.naranja,
            { order: 1, yAxisID: "y1", borderDash: [6, 3], pointStyle: "triangle", pointRadius: 3 }),
        ],
        summary: `En el periodo: ${plural(total.busquedas, "búsqueda", "búsquedas")}, ` +
          `${plural(total.clics, "clic", "clics")} y ${plural(total.pedidos, "pedido", "pedidos")}.`,
      },
      "g-tasas": {
        config: () => {
          const options = baseOptions(por, (v) => `${v} %`,
            (v) => (v === null || v === undefined ? "—" : `${oneDecimal.format(v)} %`));
          options.scales.y.ticks.precision = undefined;
          options.scales.y.suggestedMax = 10;
          return { type: "line", data: { labels: [], datasets: [] }, options };
        },
        datasets: [
          line("CTR", field("ctr", asPercent), COLORS.azul),
          line("Conversión desde búsquedas", field("conversion_busquedas", asPercent), COLORS.verde,
            { borderDash: [6, 3], pointStyle: "rect" }),
          line("Conversión desde conversaciones", field("conversion_conversaciones", asPercent), COLORS.morado,
            { borderDash: [2, 2], pointStyle: "triangle", pointRadius: 3 }),
        ],
        summary: `En el periodo: CTR ${percentOrNone(total.ctr)}; conversión desde búsquedas ` +
          `${percentOrNone(total.conversion_busquedas)} y desde conversaciones ` +
          `${percentOrNone(total.conversion_conversaciones)}.`,
      },
      "g-ingresos": {
        config: () => {
          const options = baseOptions(por, (v) => "$" + compact.format(v), (v) => money(v));
          return { type: "bar", data: { labels: [], datasets: [] }, options };
        },
        datasets: [
          bar("Ingresos totales", field("ingresos", asNumber), COLORS.azul),
          bar("Desde búsquedas", field("ingresos_busqueda", asNumber), COLORS.verde),
          bar("Desde conversaciones", field("ingresos_conversacion", asNumber), COLORS.morado),
        ],
        summary: `En el periodo: ${money(total.ingresos)} en total, ${money(total.ingresos_busqueda)} ` +
          `desde búsquedas y ${money(total.ingresos_conversacion)} desde conversaciones.`,
      },
    };
  }

  function drawCharts(serie) {
    const points = serie.puntos || [];
    const labels = points.map((p) => (serie.por === "semana" ? "sem. " : "") + shortDay(p.periodo));
    for (const [id, spec] of Object.entries(chartSpecs(serie))) {
      $(id + "-resumen").textContent = spec.summary;
      if (!chartsAvailable) continue;
      let chart = charts[id];
      // The tooltip titles depend on the grouping: a new grouping gets a new chart.
      if (chart && chart.$por !== serie.por) {
        chart.destroy();
        chart = null;
      }
      if (!chart) {
        chart = new Chart($(id), spec.config());
        chart.$por = serie.por;
        charts[id] = chart;
      }
      chart.$periodos = points.map((p) => p.periodo);
      chart.data.labels = labels;
      chart.data.datasets = spec.datasets;
      chart.update();
    }
  }

  function destroyCharts() {
    for (const id of Object.keys(charts)) {
      charts[id].destroy();
      delete charts[id];
    }
  }

  // ---- Tables -------------------------------------------------------------

  /** Fills a table's body; `columns` are [value(row), numeric?, class?]; the
   * first column heads its row. */
  function fillTable(id, rows, columns, decorate) {
    const tbody = $(id).tBodies[0];
    tbody.replaceChildren();
    if (!rows || rows.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "vacia";
      const td = document.createElement("td");
      td.colSpan = columns.length;
      td.textContent = EMPTY;
      tr.append(td);
      tbody.append(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      columns.forEach(([value, numeric, className], i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        if (numeric || className) cell.className = numeric ? "num" : className;
        const content = value(row);
        if (content instanceof Node) cell.append(content);
        else cell.textContent = content;
        tr.append(cell);
      });
      if (decorate) decorate(tr, row);
      tbody.append(tr);
    }
  }

  const QUERY_COLUMNS = {
    "consultas-populares": [
      [(q) => q.consulta],
      [(q) => integer(q.busquedas), true],
      [(q) => integer(q.clics), true],
      [(q) => percent(q.ctr), true],
      [(q) => integer(q.pedidos), true],
      [(q) => money(q.ingresos), true],
    ],
    "consultas-sin-resultados": [
      [(q) => q.consulta],
      [(q) => integer(q.busquedas), true],
      [(q) => integer(q.sin_resultados), true],
    ],
    "consultas-sin-clics": [
      [(q) => q.consulta],
      [(q) => integer(q.busquedas), true],
      [(q) => (isNumber(q.busquedas) && isNumber(q.sin_resultados)
        ? integer(Number(q.busquedas) - Number(q.sin_resultados)) : "—"), true],
      [(q) => integer(q.clics), true],
    ],
  };

  function renderQueries(id, answer) {
    fillTable(id, answer.consultas, QUERY_COLUMNS[id], (tr, q) => {
      tr.dataset.consulta = q.consulta;
    });
  }

  function renderProducts(answer) {
    fillTable("productos-top", answer.productos, [
      [(p) => p.nombre || `Producto ${p.producto_id}`],
      [(p) => p.sku || "—", false, "sin-corte"],
      [(p) => integer(p.impresiones), true],
      [(p) => integer(p.clics), true],
      [(p) => percent(p.ctr), true],
      [(p) => decimal(p.posicion_media_clic), true],
      [(p) => integer(p.unidades), true],
      [(p) => money(p.ingresos), true],
    ], (tr, p) => {
      tr.dataset.producto = p.producto_id;
    });
  }

  function renderRatings(answer) {
    const useful = Number(answer.utiles) || 0;
    const notUseful = Number(answer.no_utiles) || 0;
    $("valoraciones-resumen").textContent = useful + notUseful
      ? `${plural(useful, "útil", "útiles")} y ${plural(notUseful, "no útil", "no útiles")} ` +
        `(${percent(answer.tasa_util)} útiles) en estas fechas.`
      : "";
    fillTable("valoraciones", answer.comentarios, [
      [(c) => {
        if (c.comentario) return c.comentario;
        const none = document.createElement("span");
        none.className = "suave";
        none.textContent = "Sin comentario";
        return none;
      }],
      [(c) => {
        const mark = document.createElement("span");
        mark.className = c.util ? "insignia util" : "insignia no-util";
        mark.textContent = c.util ? "Útil" : "No útil";
        return mark;
      }],
      [(c) => {
        const time = document.createElement("time");
        time.className = "sin-corte";
        time.dateTime = c.fecha || "";
        time.textContent = dateTime(c.fecha);
        return time;
      }],
    ], (tr, c) => {
      tr.dataset.respuesta = c.respuesta_id;
    });
  }

  // ---- Orders -------------------------------------------------------------

  /** Orders that arrived live since signing in, by id, and the ids still marked new. */
  const liveOrders = new Map();
  const freshOrders = new Set();
  let newOrders = 0;
  let shownOrders = [];

  function showNewCounter() {
    newCounter.textContent = newOrders === 0
      ? "Sin pedidos nuevos desde que abriste el panel"
      : `${newOrders} ${newOrders === 1 ? "nuevo" : "nuevos"} desde que abriste el panel`;
  }

  const orderTime = (order) => {
    const time = Date.parse(order.created_at);
    return Number.isNaN(time) ? 0 : time;
  };

  function orderItem(order) {
    const item = document.createElement("li");
    item.className = "pedido";
    item.dataset.pedido = order.id;
    const head = document.createElement("div");
    head.className = "pedido-cabeza";
    const title = document.createElement("strong");
    title.textContent = `Pedido #${order.id}`;
    const amount = document.createElement("span");
    amount.className = "pedido-total";
    amount.textContent = money(order.total);
    head.append(title, amount);
    const origin = order.conversacion_id !== null && order.conversacion_id !== undefined ? "Asistente" : "REST";
    const lines = Array.isArray(order.items) ? order.items.length : 0;
    const detail = document.createElement("p");
    detail.className = "pedido-detalle";
    const parts = [
      order.estado ? String(order.estado) : null,
      plural(lines, "producto", "productos"),
      origin,
      order.cliente_id !== null && order.cliente_id !== undefined ? `Cliente #${order.cliente_id}` : "Sin cliente",
    ].filter(Boolean);
    detail.textContent = parts.join(" · ");
    const time = document.createElement("time");
    time.className = "pedido-fecha";
    time.dateTime = order.created_at || "";
    time.textContent = dateTime(order.created_at);
    item.append(head, detail, time);
    if (freshOrders.has(String(order.id))) markNew(item);
    return item;
  }

  function markNew(item) {
    item.classList.add("nuevo");
    if (!item.querySelector(".insignia-nuevo")) {
      const badge = document.createElement("span");
      badge.className = "insignia insignia-nuevo";
      badge.textContent = "Nuevo";
      item.querySelector(".pedido-cabeza strong").after(badge);
    }
  }

  function unmarkNew(id) {
    freshOrders.delete(id);
    const item = ordersList.querySelector(`li[data-pedido="${CSS.escape(id)}"]`);
    if (!item) return;
    item.classList.remove("nuevo");
    const badge = item.querySelector(".insignia-nuevo");
    if (badge) badge.remove();
  }

  /** Shows the newest orders of `orders` (API ones and live ones together). */
  function showOrders(orders) {
    const byId = new Map();
    for (const order of orders) {
      if (order && order.id !== null && order.id !== undefined && !byId.has(String(order.id))) {
        byId.set(String(order.id), order);
      }
    }
    shownOrders = [...byId.values()]
      .sort((a, b) => orderTime(b) - orderTime(a) || Number(b.id) - Number(a.id))
      .slice(0, MAX_ORDERS);
    ordersList.replaceChildren(...shownOrders.map(orderItem));
    if (shownOrders.length === 0) {
      const empty = document.createElement("li");
      empty.className = "vacia";
      empty.textContent = "Todavía no hay pedidos.";
      ordersList.append(empty);
    }
  }

  function renderOrders(answer) {
    showOrders([...(answer.items || []), ...liveOrders.values()]);
  }

  function addLiveOrder(payload) {
    const order = payload && payload.id === undefined && payload.pedido ? payload.pedido : payload;
    if (!order || order.id === null || order.id === undefined) return;
    const id = String(order.id);
    if (liveOrders.has(id) || shownOrders.some((shown) => String(shown.id) === id)) return;
    liveOrders.set(id, order);
    freshOrders.add(id);
    newOrders += 1;
    showNewCounter();
    // The newest goes first whatever its clock says; the rest keep their order.
    shownOrders = [order, ...shownOrders].slice(0, MAX_ORDERS);
    const empty = ordersList.querySelector("li.vacia");
    if (empty) empty.remove();
    ordersList.prepend(orderItem(order));
    while (ordersList.children.length > MAX_ORDERS) ordersList.lastElementChild.remove();
    setTimeout(() => unmarkNew(id), NEW_MARK_MS);
  }

  // ---- Live updates -------------------------------------------------------

  function setLive(state, text) {
    live.dataset.estado = state;
    live.textContent = text;
  }

  function connectLive() {
    disconnectLive();
    if (typeof io !== "function") {
      setLive("caido", "Sin conexión en vivo");
      return;
    }
    setLive("conectando", "Conectando en vivo…");
    const current = io({ auth: { token }, transports: ["websocket", "polling"] });
    socket = current;
    current.on("connect", () => setLive("vivo", "En vivo"));
    current.on("disconnect", (reason) => {
      if (socket !== current) return;
      setLive("caido", "Sin conexión en vivo");
      // The server closed it (it does not come back by itself): try again later.
      if (reason === "io server disconnect") {
        clearTimeout(reconnectTimer);
        reconnectTimer = setTimeout(() => socket === current && current.connect(), 5000);
      }
    });
    current.on("connect_error", (err) => {
      if (socket !== current) return;
      setLive("caido", "Sin conexión en vivo");
      // Refused by the server (not a network failure, which retries by itself):
      // a token it no longer takes. Ask the API to be sure; its 401 signs out.
      if (!current.active) {
        console.warn("Conexión en vivo rechazada:", err && err.message);
        const retry = () => {
          if (socket !== current) return;
          clearTimeout(reconnectTimer);
          reconnectTimer = setTimeout(() => socket === current && current.connect(), 15000);
        };
        api("/api/pedidos?limit=1").then(retry, (failure) => {
          if (failure.status !== 401) retry();
        });
      }
    });
    current.on("pedido_nuevo", addLiveOrder);
  }

  function disconnectLive() {
    clearTimeout(reconnectTimer);
    if (socket) {
      const old = socket;
      socket = null;
      old.off();
      old.disconnect();
    }
    live.textContent = "";
    delete live.dataset.estado;
  }

  // ---- Reports ------------------------------------------------------------

  const REPORTS = {
    "clientes-csv": ["clientes", "csv"],
    "productos-csv": ["productos", "csv"],
    "pedidos-csv": ["pedidos", "csv"],
    "pedidos-json": ["pedidos", "json"],
    "eventos-jsonl": ["eventos", "jsonl"],
  };

  /** The file name a Content-Disposition header gives, if any. */
  function dispositionName(header) {
    if (!header) return null;
    let name = null;
    const extended = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
    if (extended) {
      try {
        name = decodeURIComponent(extended[2].trim().replace(/^"|"$/g, ""));
      } catch (err) {
        name = null;
      }
    }
    if (!name) {
      const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(header);
      if (plain) name = plain[2] !== undefined ? plain[2].replace(/\\(.)/g, "$1") : plain[1].trim();
    }
    name = name ? name.split(/[\\/]/).pop().trim() : "";
    return name || null;
  }

  function size(bytes) {
    if (bytes < 1024) return `${integer(bytes)} B`;
    if (bytes < 1024 * 1024) return `${decimal(bytes / 1024)} KB`;
    return `${decimal(bytes / (1024 * 1024))} MB`;
  }

  async function download(button) {
    const [entity, format] = REPORTS[button.dataset.reporte];
    const params = entity === "eventos" ? rangeQuery({ formato: format }) : `formato=${format}`;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    clearError();
    downloadStatus.textContent = `Preparando «${button.textContent}»…`;
    try {
      const response = await api(`/api/exportar/${entity}?${params}`, "*/*");
      const blob = await response.blob();
      const name = dispositionName(response.headers.get("Content-Disposition")) || `${entity}.${format}`;
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      const rows = response.headers.get("X-Export-Rows");
      const count = isNumber(rows) ? `${plural(rows, "fila", "filas")}, ` : "";
      downloadStatus.textContent = `Descargado: ${name} (${count}${size(blob.size)}).`;
    } catch (err) {
      downloadStatus.textContent = "";
      if (token) showError(`No se pudo descargar «${button.textContent}»: ${err.message}`);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  for (const button of document.querySelectorAll("[data-reporte]")) {
    button.addEventListener("click", () => download(button));
  }

  // ---- Start --------------------------------------------------------------

  function resetDashboard() {
    for (const value of document.querySelectorAll("[data-cifra]")) value.textContent = "—";
    for (const note of document.querySelectorAll(".cifra .detalle[id]")) note.textContent = "";
    for (const table of document.querySelectorAll(".tabla table")) table.tBodies[0].replaceChildren();
    for (const summary of document.querySelectorAll(".grafica .resumen")) summary.textContent = "";
    $("valoraciones-resumen").textContent = "";
    rangeLabel.textContent = "";
    downloadStatus.textContent = "";
    destroyCharts();
    ordersList.replaceChildren();
    shownOrders = [];
    liveOrders.clear();
    freshOrders.clear();
    newOrders = 0;
    newCounter.textContent = "";
  }

  defaultRange();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  const savedExpiry = Number(sessionStorage.getItem(EXPIRES_KEY));
  if (saved && (!savedExpiry || savedExpiry > Date.now())) {
    let savedUser = null;
    try {
      savedUser = JSON.parse(sessionStorage.getItem(USER_KEY));
    } catch (err) {
      savedUser = null;
    }
    signIn({ token: saved, usuario: savedUser }, false);
  } else {
    signOut(saved ? EXPIRED : "");
  }
})();
