// Quorum: GOV.UK Frontend's scripts for the components the pages use, as a module.
// Progressive enhancement only: every page, link and form works without it.
import {
  Button,
  CharacterCount,
  Checkboxes,
  createAll,
  ErrorSummary,
  NotificationBanner,
  Radios,
  ServiceNavigation,
  SkipLink,
} from "./govuk-frontend.min.js";

for (const Component of [
  Button,
  CharacterCount,
  Checkboxes,
  ErrorSummary,
  NotificationBanner,
  Radios,
  ServiceNavigation,
  SkipLink,
]) {
  createAll(Component);
}
