// The one Socket.IO connection of a page. Every script that talks to the server live (live.js
// for rooms and threads, meeting_room.js for a meeting's panels) imports it from here: a module
// is evaluated once per page, so they share this connection and its reconnections.
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";

export const socket = io({ transports: ["websocket"], reconnectionDelayMax: 5000, timeout: 10000 });
