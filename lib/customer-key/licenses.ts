import { grantIsProvenNewer, revokeIsProvenOlder, type Stamped } from './lifecycle-order.js';

/**
 * Concurrent agreements (AWS Marketplace, on by default for SaaS listings since June 2026): one buyer account can
 * hold several active agreements for the same product, each with its own license (`LicenseArn`). The buyer keeps
 * ONE key per product — API Gateway meters a key by its customerId and usage plan, so a second key would only split
 * the buyer's usage — and the record lists the licenses: the key is enabled while any of them is active, and the
 * last one deprovisioned disables it. Each license is ordered on its own (lib/customer-key/lifecycle-order.ts), so repeats and
 * any order of the license events converge to the same state.
 */
export interface LicenseState {
  status: 'active' | 'deprovisioned';
  /** The time of the license's last change. */
  at: string;
  /** Absent: a producer's time. */
  clock?: 'queue';
}

export type Licenses = Record<string, LicenseState>;

const stampOf = (state: LicenseState): Stamped => ({ time: state.at, clock: state.clock ?? 'producer' });
/** A license's state after an event at `event`. */
export const licenseState = (status: LicenseState['status'], event: Stamped): LicenseState => ({
  status,
  at: event.time,
  ...(event.clock === 'queue' && { clock: 'queue' as const }),
});

/**
 * The licenses after a license event, or `stale` when the event cannot change its license: a grant not proven newer
 * than the license's last change, a deprovisioning proven older. `unchanged` for a repeat of the current state.
 */
export function applyLicenseEvent(
  licenses: Licenses | undefined,
  licenseArn: string,
  status: LicenseState['status'],
  event: Stamped,
): Licenses | 'stale' | 'unchanged' {
  const last = licenses?.[licenseArn];
  if (last) {
    if (last.status === status && last.at === event.time) return 'unchanged';
    const applies = status === 'active' ? grantIsProvenNewer(event, stampOf(last)) : !revokeIsProvenOlder(event, stampOf(last));
    if (!applies) return last.status === status ? 'unchanged' : 'stale';
  }
  return { ...licenses, [licenseArn]: licenseState(status, event) };
}

/** The active licenses' ARNs, sorted. */
export const activeLicenses = (licenses: Licenses | undefined): string[] =>
  Object.entries(licenses ?? {})
    .filter(([, state]) => state.status === 'active')
    .map(([arn]) => arn)
    .sort();

/** Whether any license keeps the key enabled. */
export const anyActive = (licenses: Licenses | undefined): boolean => activeLicenses(licenses).length > 0;
