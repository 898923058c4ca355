/**
 * proto/ccparams — the consensus parameters of congestion control (prop 324 §6.5) and of
 * the SENDME windows, read as tor 0.4.9 reads them: its code defaults and its clamps.
 *
 * Layer: protocol core. No I/O, no clock. One pure function, `congestionParams`, turns a
 * consensus `params` record into a frozen `CongestionParams` snapshot; a hop reads it
 * once, when it is created (tor: `congestion_control_new`). Not here: negotiation (the
 * ntor v3 extension), the algorithm (vegas.ts), XON/XOFF (xonxoff.ts).
 *
 * Sources [TOR 0.4.9]: congestion_control_common.c `congestion_control_new_consensus_params`,
 * `congestion_control_init_params`; congestion_control_vegas.c
 * `congestion_control_vegas_set_params`; congestion_control_flow.c
 * `flow_control_new_consensus_params`; circuitlist.c `circuit_initial_package_window`;
 * sendme.c `get_emit_min_version` / `get_accept_min_version`. Each value is read like
 * `networkstatus_get_param` (absent or unparsable ⇒ default; then clamped to [min, max]),
 * and then, where tor stores it in a narrower C field, narrowed the same way (see
 * `u8` / `u16` below: only absurd consensus values are affected).
 */

const INT32_MAX = 0x7fffffff;

/** Cells in a full 16 KiB TLS record: (16·1024)/514 = 31 (tor `TLS_RECORD_MAX_CELLS`). */
export const TLS_RECORD_MAX_CELLS = Math.floor((16 * 1024) / 514);
/** Two TLS records of cells (tor `OUTBUF_CELLS`, congestion_control_vegas.c): 62. */
export const OUTBUF_CELLS = 2 * TLS_RECORD_MAX_CELLS;
/** The smallest relay payload, V1 format with a stream id: 509 − 21 = 488 (tor `RELAY_PAYLOAD_SIZE_MIN`). */
export const RELAY_PAYLOAD_SIZE_MIN = 509 - (16 + 1 + 2 + 2);
/** The largest relay payload, V0 format: 509 − 11 = 498 (tor `RELAY_PAYLOAD_SIZE_MAX`). */
export const RELAY_PAYLOAD_SIZE_MAX = 509 - 11;

/** Which Vegas thresholds a hop uses (tor `cc_path_t`; a client's exit circuits are `exit`). */
export type CcPath = 'exit' | 'onion';

/** Congestion control and SENDME parameters, in the units tor uses them. */
export interface CongestionParams {
  /** `cc_alg` (default 2, clamp 0–3): 0 = the fixed SENDME windows, 2 = Vegas; 1 and 3 become 2. */
  readonly alg: 0 | 2;
  /** `cc_sendme_inc` (31, 1–254): cells acknowledged by each circuit SENDME. */
  readonly sendmeInc: number;
  /** `cc_cwnd_init` (124, 31–10000). */
  readonly cwndInit: number;
  /** `cc_cwnd_min` (124, 31–1000). */
  readonly cwndMin: number;
  /** `cc_cwnd_max` (INT32_MAX, 500–INT32_MAX): applied after every SENDME. */
  readonly cwndMax: number;
  /** `cc_cwnd_inc` (1, 1–1000): steady-state step. */
  readonly cwndInc: number;
  /** `cc_cwnd_inc_rate` (31, 1–250): steady-state updates per cwnd are cwnd/(rate·sendme_inc). */
  readonly cwndIncRate: number;
  /** `cc_cwnd_inc_pct_ss` (100, 1–500): slow-start step, percent of sendme_inc. */
  readonly cwndIncPctSs: number;
  /** `cc_ss_max` (5000, 500–INT32_MAX): slow start ends at this cwnd. */
  readonly ssMax: number;
  /** `cc_sscap_exit` (600) / `cc_sscap_onion` (475), 100–INT32_MAX: RFC 3742 limited slow start above it. */
  readonly sscap: number;
  /** `cc_vegas_alpha_exit` (3·62 = 186) / `_onion` (186), 0–1000, in cells. */
  readonly alpha: number;
  /** `cc_vegas_beta_exit` (4·62 = 248) / `_onion` (6·62 = 372), 0–1000, in cells. */
  readonly beta: number;
  /** `cc_vegas_gamma_exit` (3·62 = 186) / `_onion` (4·62 = 248), 0–1000, in cells. */
  readonly gamma: number;
  /** `cc_vegas_delta_exit` (5·62 = 310) / `_onion` (7·62 = 434), 0–INT32_MAX, in cells; tor keeps it in a uint16_t. */
  readonly delta: number;
  /** `cc_cwnd_full_gap` (4, 0–32767): cwnd is full when inflight + gap·sendme_inc ≥ cwnd. */
  readonly cwndFullGap: number;
  /** `cc_cwnd_full_minpct` (25, 0–100): cwnd stops being full when inflight < pct % of cwnd. */
  readonly cwndFullMinPct: number;
  /** `cc_cwnd_full_per_cwnd` (1, 0–1): reset cwnd_full once per cwnd (true) or per cwnd update (false). */
  readonly cwndFullPerCwnd: boolean;
  /** `cc_ewma_cwnd_pct` (50, 1–255): steady-state RTT EWMA N is this percent of the updates per cwnd. */
  readonly ewmaCwndPct: number;
  /** `cc_ewma_max` (10, 2–INT32_MAX): cap of N; tor keeps it in a uint8_t. */
  readonly ewmaMax: number;
  /** `cc_ewma_ss` (2, 2–INT32_MAX): N in slow start; tor keeps it in a uint8_t. */
  readonly ewmaSs: number;
  /** `cc_rtt_reset_pct` (100, 0–100): how far min_rtt moves toward the EWMA when cwnd sits at cwnd_min. */
  readonly rttResetPct: number;
  /** `cc_bwe_min` (5, 2–20): read by tor 0.4.9 but unused. */
  readonly bweMin: number;
  /** `cc_xoff_client` (500, 1–10000) × 488: bytes buffered for the app before a client sends XOFF. */
  readonly xoffClientBytes: number;
  /** `cc_xoff_exit` (500, 1–10000) × 488: an exit's XOFF limit (a client's dropmark check uses it). */
  readonly xoffExitBytes: number;
  /** `cc_xon_rate` (500, 1–5000) × 498: bytes drained between two drain-rate updates. */
  readonly xonRateBytes: number;
  /** `cc_xon_change_pct` (25, 1–99): an advisory XON goes out when the drain rate moves more than this. */
  readonly xonChangePct: number;
  /** `cc_xon_ewma_cnt` (2, 2–100): N of the drain-rate EWMA. */
  readonly xonEwmaCnt: number;
  /** `cellq_high` (256, 1–1000): a circuit's queue toward its channel is "blocked" from here… */
  readonly cellqHigh: number;
  /** `cellq_low` (10, 1–1000): …until it drains to this. */
  readonly cellqLow: number;
  /** `orconn_high` (32768, 509–INT32_MAX): stop writing to a connection whose outbuf holds this many bytes. */
  readonly orconnHigh: number;
  /** `orconn_low` (16384, 509–INT32_MAX): resume below this. */
  readonly orconnLow: number;
  /** `circwindow` (1000, 100–1000): the legacy circuit package window (the deliver window is always 1000). */
  readonly circwindow: number;
  /** `sendme_emit_min_version` (1, 0–255). */
  readonly sendmeEmitMinVersion: number;
  /** `sendme_accept_min_version` (0, 0–255). */
  readonly sendmeAcceptMinVersion: number;
}

/** tor's `networkstatus_get_param`: absent or not an int32 ⇒ default, then clamped. */
function param(params: Readonly<Record<string, number>>, name: string, dflt: number, min: number, max: number): number {
  const v = params[name];
  const value = v === undefined || !Number.isInteger(v) || v < -0x80000000 || v > INT32_MAX ? dflt : v;
  return value < min ? min : value > max ? max : value;
}

/** A C `uint8_t` assignment (the value is non-negative here). */
const u8 = (v: number): number => v % 0x100;
/** A C `uint16_t` assignment. */
const u16 = (v: number): number => v % 0x10000;

/**
 * The congestion control parameters of a consensus (`params` line), tor 0.4.9's defaults
 * for the rest. `path` picks the Vegas thresholds (tor `CC_PATH_EXIT` for exit circuits
 * and onion-service SOS legs, `CC_PATH_ONION` for rendezvous circuits).
 */
export function congestionParams(params: Readonly<Record<string, number>> = {}, path: CcPath = 'exit'): CongestionParams {
  const p = (name: string, dflt: number, min: number, max: number) => param(params, name, dflt, min, max);
  // congestion_control_new_consensus_params: 1 (Westwood) and 3 (NOLA) are gone in 0.4.9 → the default.
  const alg = p('cc_alg', 2, 0, 3) === 0 ? 0 : 2;
  const exit = path === 'exit';
  const T = TLS_RECORD_MAX_CELLS;
  return Object.freeze({
    alg,
    sendmeInc: p('cc_sendme_inc', T, 1, 254),
    cwndInit: p('cc_cwnd_init', 4 * T, T, 10000),
    cwndMin: p('cc_cwnd_min', 4 * T, T, 1000),
    cwndMax: p('cc_cwnd_max', INT32_MAX, 500, INT32_MAX),
    cwndInc: p('cc_cwnd_inc', 1, 1, 1000),
    cwndIncRate: p('cc_cwnd_inc_rate', T, 1, 250),
    cwndIncPctSs: p('cc_cwnd_inc_pct_ss', 100, 1, 500),
    ssMax: p('cc_ss_max', 5000, 500, INT32_MAX),
    sscap: exit ? p('cc_sscap_exit', 600, 100, INT32_MAX) : p('cc_sscap_onion', 475, 100, INT32_MAX),
    // congestion_control_vegas.c: VEGAS_*_EXIT_DFLT / VEGAS_*_ONION_DFLT, multiples of OUTBUF_CELLS (62);
    // the consensus values are in cells too (tor does not multiply them).
    alpha: p(exit ? 'cc_vegas_alpha_exit' : 'cc_vegas_alpha_onion', 3 * OUTBUF_CELLS, 0, 1000),
    beta: p(exit ? 'cc_vegas_beta_exit' : 'cc_vegas_beta_onion', (exit ? 4 : 6) * OUTBUF_CELLS, 0, 1000),
    gamma: p(exit ? 'cc_vegas_gamma_exit' : 'cc_vegas_gamma_onion', (exit ? 3 : 4) * OUTBUF_CELLS, 0, 1000),
    // vegas_params.delta is a uint16_t although its clamp goes to INT32_MAX.
    delta: u16(p(exit ? 'cc_vegas_delta_exit' : 'cc_vegas_delta_onion', (exit ? 5 : 7) * OUTBUF_CELLS, 0, INT32_MAX)),
    cwndFullGap: p('cc_cwnd_full_gap', 4, 0, 0x7fff),
    cwndFullMinPct: p('cc_cwnd_full_minpct', 25, 0, 100),
    cwndFullPerCwnd: p('cc_cwnd_full_per_cwnd', 1, 0, 1) === 1,
    ewmaCwndPct: p('cc_ewma_cwnd_pct', 50, 1, 255),
    // n_ewma_max and n_ewma_ss are uint8_t although their clamps go to INT32_MAX.
    ewmaMax: u8(p('cc_ewma_max', 10, 2, INT32_MAX)),
    ewmaSs: u8(p('cc_ewma_ss', 2, 2, INT32_MAX)),
    rttResetPct: p('cc_rtt_reset_pct', 100, 0, 100),
    bweMin: p('cc_bwe_min', 5, 2, 20),
    xoffClientBytes: p('cc_xoff_client', 500, 1, 10000) * RELAY_PAYLOAD_SIZE_MIN,
    xoffExitBytes: p('cc_xoff_exit', 500, 1, 10000) * RELAY_PAYLOAD_SIZE_MIN,
    xonRateBytes: p('cc_xon_rate', 500, 1, 5000) * RELAY_PAYLOAD_SIZE_MAX,
    xonChangePct: p('cc_xon_change_pct', 25, 1, 99),
    xonEwmaCnt: p('cc_xon_ewma_cnt', 2, 2, 100),
    cellqHigh: p('cellq_high', 256, 1, 1000),
    cellqLow: p('cellq_low', 10, 1, 1000),
    orconnHigh: p('orconn_high', 32 * 1024, 509, INT32_MAX),
    orconnLow: p('orconn_low', 16 * 1024, 509, INT32_MAX),
    circwindow: p('circwindow', 1000, 100, 1000),
    sendmeEmitMinVersion: p('sendme_emit_min_version', 1, 0, 255),
    sendmeAcceptMinVersion: p('sendme_accept_min_version', 0, 0, 255),
  });
}

/** tor 0.4.9's defaults (an empty `params` line), exit path. */
export const DEFAULT_CONGESTION_PARAMS: CongestionParams = congestionParams({});

/**
 * Whether the consensus enables congestion control (tor `congestion_control_enabled`:
 * `cc_alg` ≠ 0; an absent `cc_alg` means 2, enabled). A client then asks for it in the
 * ntor v3 handshake of its exit hops.
 */
export function congestionControlEnabled(params: Readonly<Record<string, number>> = {}): boolean {
  return param(params, 'cc_alg', 2, 0, 3) !== 0;
}
