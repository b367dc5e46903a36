// The customer chat page: asks Tendero over Socket.IO, shows answers as they
// stream, the products they cite as cards, and sends spoken questions as 16 kHz
// mono WAV. The conversation id lives in localStorage, so a reload or a
// reconnect continues the same conversation (its messages are fetched again),
// and the page's other tabs follow it: a question asked in one shows up, with its
// answer streaming, in all of them.
"use strict";

(() => {
  const STORAGE_KEY = "tendero.chat_id";
  const $ = (id) => document.getElementById(id);
  const list = $("mensajes");
  const form = $("formulario");
  const input = $("pregunta");
  const sendButton = $("enviar");
  const stopButton = $("detener");
  const micButton = $("microfono");
  const status = $("estado");
  const notice = $("aviso");

  const FRIENDLY = {
    rate_limited: "Estás enviando preguntas muy rápido. Espera un momento y vuelve a intentarlo.",
    busy: "Hay muchas personas preguntando ahora mismo. Intenta de nuevo en unos segundos.",
    shutting_down: "Estamos actualizando el asistente. Vuelve a preguntar en unos segundos.",
    generator_unavailable: "El asistente no puede responder en este momento. Intenta más tarde.",
    speech_unavailable: "La voz no está disponible en esta tienda: escribe tu pregunta.",
    internal_error: "Algo falló de nuestro lado. Intenta de nuevo.",
  };
  const price = new Intl.NumberFormat("es-CO", {
    style: "currency",
    currency: "COP",
    maximumFractionDigits: 0,
  });

  let chatId = localStorage.getItem(STORAGE_KEY);
  /** The answer streaming now: {item, text, question, following}; `following`
   * when another tab (or device) asked it. */
  let current = null;
  /** The spoken question waiting for its transcription: its message item. */
  let pendingVoice = null;
  let recording = null;

  const socket = io({ transports: ["websocket", "polling"] });

  function ensureChatId() {
    if (!chatId) {
      chatId = window.crypto && crypto.randomUUID
        ? crypto.randomUUID()
        : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
      localStorage.setItem(STORAGE_KEY, chatId);
    }
    return chatId;
  }

  function showNotice(message) {
    notice.textContent = message;
    notice.hidden = !message;
  }

  function scrollDown() {
    window.scrollTo({ top: document.body.scrollHeight });
  }

  function addMessage(role, text) {
    const item = document.createElement("li");
    item.className = "mensaje " + role;
    const who = document.createElement("span");
    who.className = "quien";
    who.textContent = role === "cliente" ? "Tú" : role === "agente" ? "Asistente" : "Aviso";
    const body = document.createElement("span");
    body.className = "texto";
    body.textContent = text;
    item.append(who, body);
    list.append(item);
    scrollDown();
    return item;
  }

  function setText(item, text) {
    item.querySelector(".texto").textContent = text;
  }

  // The products an answer cites, as cards; the ones recommended with it (they carry
  // a `motivo`) in a second row under "También te puede interesar". A card's place
  // is its place among the answer's sources, which a click reports with the answer's id.
  function addCards(item, sources, respuestaId) {
    const placed = (sources || []).map((source, i) => ({ source, posicion: i + 1 }));
    const products = placed.filter((p) => p.source.tipo === "producto");
    addCardList(item, products.filter((p) => !p.source.motivo), "Productos mencionados", null,
      respuestaId);
    addCardList(item, products.filter((p) => p.source.motivo), "También te puede interesar",
      "También te puede interesar", respuestaId);
    if (respuestaId != null) addRating(item, respuestaId);
  }

  function addCardList(item, products, label, heading, respuestaId) {
    if (products.length === 0) return;
    if (heading) {
      const title = document.createElement("p");
      title.className = "sugerencias";
      title.textContent = heading;
      item.append(title);
    }
    const cards = document.createElement("ul");
    cards.className = "tarjetas";
    cards.setAttribute("aria-label", label);
    for (const { source: product, posicion } of products) {
      const entry = document.createElement("li");
      const card = document.createElement("button");
      card.type = "button";
      card.className = "tarjeta";
      card.dataset.sku = product.sku || "";
      card.setAttribute("aria-pressed", "false");
      const name = document.createElement("span");
      name.className = "nombre";
      name.textContent = product.titulo;
      const cost = document.createElement("span");
      cost.className = "precio";
      cost.textContent = product.precio != null ? price.format(Number(product.precio)) : "";
      const stock = document.createElement("span");
      stock.className = "detalle";
      stock.textContent = product.stock > 0 ? `${product.stock} disponibles` : "Agotado";
      const category = document.createElement("span");
      category.className = "detalle";
      category.textContent = product.categoria || "";
      card.append(name, cost, stock, category);
      card.addEventListener("click", () => {
        card.setAttribute("aria-pressed", "true");
        if (respuestaId == null) return;
        socket.emit("product_click", {
          respuesta_id: respuestaId,
          producto_id: product.id,
          posicion,
        });
      });
      entry.append(card);
      cards.append(entry);
    }
    item.append(cards);
    scrollDown();
  }

  // "¿Te sirvió?": «Sí» or «No» sends the rating at once; a comment may follow it.
  function addRating(item, respuestaId) {
    const box = document.createElement("div");
    box.className = "valoracion";
    const ask = document.createElement("span");
    ask.textContent = "¿Te sirvió esta respuesta?";
    const comment = document.createElement("form");
    comment.className = "comentario";
    comment.hidden = true;
    const field = document.createElement("input");
    field.type = "text";
    field.maxLength = 1000;
    field.placeholder = "¿Algo que agregar? (opcional)";
    field.setAttribute("aria-label", "Comentario sobre la respuesta");
    const send = document.createElement("button");
    send.type = "submit";
    send.textContent = "Enviar";
    comment.append(field, send);
    let util = null;
    const thumbs = [
      [true, "Sí", "Sí, me sirvió"],
      [false, "No", "No me sirvió"],
    ].map(([value, symbol, label]) => {
      const thumb = document.createElement("button");
      thumb.type = "button";
      thumb.className = "pulgar";
      thumb.textContent = symbol;
      thumb.setAttribute("aria-label", label);
      thumb.setAttribute("aria-pressed", "false");
      thumb.addEventListener("click", () => {
        if (util !== null) return;
        util = value;
        thumb.setAttribute("aria-pressed", "true");
        for (const other of thumbs) other.disabled = other !== thumb;
        ask.textContent = "Gracias por contarnos.";
        socket.emit("feedback", { respuesta_id: respuestaId, util });
        comment.hidden = false;
      });
      return thumb;
    });
    comment.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = field.value.trim();
      if (!text || util === null) return;
      socket.emit("feedback", { respuesta_id: respuestaId, util, comentario: text });
      comment.replaceChildren(document.createTextNode("Comentario enviado."));
    });
    box.append(ask, ...thumbs, comment);
    item.append(box);
  }

  function busy(answering) {
    sendButton.disabled = answering;
    micButton.disabled = answering && !recording;
    stopButton.hidden = !answering;
  }

  function ask(question) {
    showNotice("");
    addMessage("cliente", question);
    current = { item: addMessage("agente", ""), text: "", question };
    current.item.classList.add("escribiendo");
    busy(true);
    socket.emit("query_text", { query: question, chat_id: ensureChatId() });
  }

  function finish() {
    if (current && current.item) current.item.classList.remove("escribiendo");
    current = null;
    busy(false);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || current) return;
    input.value = "";
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", () => {
    socket.emit("cancel", { chat_id: chatId });
  });

  $("nueva").addEventListener("click", () => {
    // An answer this tab asked for stops; one another tab asked for goes on there.
    if (current && !current.following) socket.emit("cancel", { chat_id: chatId });
    localStorage.removeItem(STORAGE_KEY);
    chatId = null;
    list.replaceChildren();
    finish();
    showNotice("");
    input.focus();
  });

  micButton.addEventListener("click", async () => {
    if (recording) {
      const active = recording;
      recording = null;
      micButton.setAttribute("aria-pressed", "false");
      micButton.textContent = "Hablar";
      try {
        const wav = await active.stop();
        sendVoice(await wav.arrayBuffer());
      } catch (err) {
        busy(false);
        showNotice("No se pudo procesar la grabación: " + err.message);
      }
      return;
    }
    showNotice("");
    try {
      recording = await window.TenderoWav.record();
    } catch (err) {
      showNotice("No se pudo usar el micrófono: revisa los permisos del navegador.");
      return;
    }
    micButton.setAttribute("aria-pressed", "true");
    micButton.textContent = "Enviar voz";
    sendButton.disabled = true;
  });

  function sendVoice(audio) {
    pendingVoice = addMessage("cliente", "🎤 Procesando tu voz…");
    current = { item: null, text: "", question: "" };
    busy(true);
    socket.emit("query_voice", { chat_id: ensureChatId(), audio });
  }

  socket.on("transcription", (message) => {
    if (pendingVoice) {
      setText(pendingVoice, message.text);
      pendingVoice = null;
    }
    if (current && !current.item) {
      current.question = message.text;
      current.item = addMessage("agente", "");
      current.item.classList.add("escribiendo");
    }
  });

  // A question asked in this conversation from another tab or device.
  socket.on("question", (message) => {
    if (message.chat_id !== chatId || current) return;
    showNotice("");
    addMessage("cliente", message.query);
    current = { item: addMessage("agente", ""), text: "", question: message.query, following: true };
    current.item.classList.add("escribiendo");
    busy(true);
  });

  // Another tab started a new conversation or continued an older one: follow it.
  window.addEventListener("storage", (event) => {
    if (event.key !== STORAGE_KEY || event.newValue === chatId || current) return;
    chatId = event.newValue;
    list.replaceChildren();
    showNotice("");
    if (chatId && socket.connected) socket.emit("history", { chat_id: chatId });
  });

  socket.on("response", (message) => {
    if (message.chat_id !== chatId) return;
    if (!current) {
      // An answer this tab joined half-way (opened or switched to meanwhile):
      // show it whole once it is complete.
      if (message.complete) socket.emit("history", { chat_id: chatId });
      return;
    }
    if (!current.item) return;
    if (message.complete) {
      setText(current.item, message.response);
      addCards(current.item, message.sources, message.respuesta_id);
      finish();
    } else {
      current.text += message.chunk;
      setText(current.item, current.text);
      scrollDown();
    }
  });

  socket.on("error", (error) => {
    // Another conversation this socket followed (before a new one was started).
    if (error.chat_id && error.chat_id !== chatId) return;
    if (!current && error.chat_id) {
      // An answer this tab joined half-way ended early: show what was kept.
      socket.emit("history", { chat_id: chatId });
      if (error.code !== "cancelled") showNotice(FRIENDLY[error.code] || error.message);
      return;
    }
    if (pendingVoice) {
      pendingVoice.remove();
      pendingVoice = null;
    }
    const message = FRIENDLY[error.code] || error.message;
    if (current && current.item) {
      if (error.code === "cancelled") {
        setText(current.item, (current.text || "") + "\n(Respuesta detenida)");
      } else if (current.text) {
        setText(current.item, current.text + "\n(La respuesta quedó incompleta)");
      } else {
        current.item.remove();
      }
    }
    if (error.code !== "cancelled") showNotice(message);
    finish();
  });

  socket.on("history", (history) => {
    if (history.chat_id !== chatId || current) return;
    list.replaceChildren();
    for (const message of history.messages) {
      const customer = message.role === "usuario";
      const item = addMessage(customer ? "cliente" : "agente", message.content);
      if (!customer) addCards(item, message.sources, message.id);
    }
  });

  socket.on("connect", () => {
    status.textContent = "Conectado";
    if (chatId && !current) socket.emit("history", { chat_id: chatId });
  });
  socket.on("disconnect", () => {
    status.textContent = "Sin conexión: reintentando…";
    if (current && current.following) {
      // The answer goes on where it was asked; it comes back with the conversation.
      finish();
    } else if (current) {
      showNotice("Se perdió la conexión y la respuesta se detuvo. Vuelve a preguntar.");
      if (current.item && !current.text) current.item.remove();
      finish();
    }
  });
  socket.on("connect_error", () => {
    status.textContent = "No se pudo conectar: reintentando…";
  });

  busy(false);
  input.focus();
})();
