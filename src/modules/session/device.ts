import { UAParser } from 'ua-parser-js';
import type { DeviceDto } from './dto/session.dto.js';

/** Browser, OS and device type for the device list, parsed from the User-Agent. */
export function describeDevice(userAgent: string | null): DeviceDto {
  if (!userAgent) return { browser: null, os: null, type: 'unknown' };
  const { browser, os, device } = new UAParser(userAgent).getResult();
  const join = (...parts: (string | undefined)[]) => parts.filter((part) => part).join(' ') || null;
  return {
    browser: join(browser.name, browser.major),
    os: join(os.name, os.version),
    // ua-parser leaves the type empty for desktops.
    type: device.type ?? (browser.name || os.name ? 'desktop' : 'unknown'),
  };
}
