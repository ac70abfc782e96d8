// Hybrid meeting panels (issue 6; split by panel in issue 12): the stage (meeting_stage.js), and
// the side panel's tabs: People, Hands, Key messages and votes, Chat, Agenda and papers, Chair.
// All state lives on the server: on every (re)connect the page asks for it (`meeting_join`) and
// then applies each `meeting.state` the server sends, handing it to every panel. Works beside
// meeting.js (audio and video), which it only touches by pressing its mute button when the chair
// mutes everyone or gives the floor. It talks over the page's one Socket.IO connection (socket.js).
import { byId as $ } from "./dom.js";
import { initAgenda, renderDecks } from "./meeting_agenda.js";
import { initBroadcast, renderBroadcast } from "./meeting_broadcast.js";
import { initChair, renderChair } from "./meeting_chair.js";
import { initChat, renderChat } from "./meeting_chat.js";
import { initHands, renderHands } from "./meeting_hands.js";
import { state as call } from "./meeting_call.js";
import { ctx, root, send, showError } from "./meeting_hybrid.js";
import "./meeting_layout.js";
import { initPeople, renderPeople } from "./meeting_people.js";
import { initRecording, renderRecording } from "./meeting_recording.js";
import { initQa } from "./meeting_qa.js";
import { initStage, renderSlides } from "./meeting_stage.js";
import { initVotes, renderKeyMessages } from "./meeting_votes.js";
import { socket } from "./socket.js";

async function join() {
  if (ctx.removed) return null;
  const data = ctx.device ? { device: true, head_count: ctx.device.head_count } : {};
  const ack = await send("meeting_join", data);
  if (ack) apply(ack.state);
  return ack;
}

function apply(next) {
  if (!next || next.meeting_id !== ctx.meetingId) return;
  if (ctx.snap && next.version < ctx.snap.version) return; // an older message overtaken by a newer one
  if (next.me) {
    ctx.me = next.me;
    ctx.tallies = { ...(next.me.tallies || {}) };
  }
  ctx.snap = next;
  renderDecks();
  renderSlides();
  renderHands();
  renderKeyMessages();
  renderPeople();
  renderChat();
  renderChair();
  renderBroadcast();
  renderRecording();
}

// Removed from this meeting by the chair, or no longer allowed to read its room (rooms/revocation.py):
// the server has already taken this page out of the meeting's channel; say why and stop.
function cutOff(message) {
  ctx.removed = true;
  showError(message);
  const leave = $("leave-button");
  if (leave && !$("call")?.hidden) leave.click();
  root.querySelectorAll("button, input, select, textarea").forEach((b) => { b.disabled = true; });
  root.querySelectorAll('[role="tab"]').forEach((b) => { b.disabled = false; });   // what was said can still be read
}

function init() {
  initStage();
  initAgenda();
  initQa();
  initHands();
  initVotes();
  initPeople();
  initChat();
  initChair(join);
  initBroadcast();
  initRecording();
  socket.on("connect", join);
  if (socket.connected) join();
  socket.on("meeting.state", apply);
  socket.on("meeting.tally", (m) => {   // hidden tallies this person may see, sent to them alone
    if (m.meeting_id !== ctx.meetingId) return;
    ctx.tallies = { ...m.tallies };
    if (ctx.snap) renderKeyMessages();
  });
  socket.on("meeting.removed", (m) => { if (m.meeting_id === ctx.meetingId) cutOff(m.message); });
  socket.on("access.revoked", (m) => { if (m.room_id === ctx.roomId) cutOff(m.message); });
  if (!ctx.ended) {
    // The heartbeat says whether this page is in the call: attendance runs from Join to Leave, not
    // while the page is merely open (rooms/meetings/attendance.py).
    setInterval(() => {
      if (socket.connected && !ctx.removed) send("meeting_here", { in_call: !!call.joined });
    }, 25000);
    window.addEventListener("pagehide", () => socket.emit("meeting_leave", { meeting_id: ctx.meetingId }));
  }
}

if (root) init();
