import { SetMetadata } from '@nestjs/common';

export const SKIP_TRACKING_KEY = 'skipTracking';

/** No automatic `api_request` event for this route (health, tracking endpoints, streams). */
export const SkipTracking = () => SetMetadata(SKIP_TRACKING_KEY, true);
