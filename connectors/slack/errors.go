package slack

import (
	"context"
	"errors"
	"fmt"

	"github.com/rosterhq/roster/connectors"
	"github.com/rosterhq/roster/connectors/httpapi"
	slackapi "github.com/slack-go/slack"
)

// Web API error codes that mean "already done" for the call that got them.
const (
	errAlreadyInChannel = "already_in_channel"
	errNotInChannel     = "not_in_channel"
)

// kindForSlackError maps a Web API error code ({"ok":false,"error":…}) to
// the connector error kind. Unknown codes are Unknown, which the executor
// retries.
func kindForSlackError(code string) connectors.ErrorKind {
	switch code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
		"missing_scope", "not_allowed_token_type", "org_login_required", "ekm_access_denied", "permission_denied",
		"restricted_action", "not_admin", "access_denied", "team_access_not_granted", "enterprise_is_restricted",
		"user_is_bot", "user_is_restricted", "user_is_ultra_restricted":
		return connectors.Permission
	case "channel_not_found", "user_not_found", "users_not_found", "no_such_subteam", "subteam_not_found":
		return connectors.NotFound
	case "ratelimited", "rate_limited":
		return connectors.RateLimited
	case "is_archived", "cant_invite", "cant_invite_self", "cant_kick_self", "cant_kick_from_general",
		"invalid_users", "method_not_supported_for_channel_type", "ura_max_channels", "too_many_users",
		"user_is_inactive", "usergroup_disabled":
		return connectors.Conflict
	case "invalid_arguments", "invalid_arg_name", "invalid_array_arg", "invalid_charset", "invalid_form_data",
		"invalid_post_type", "missing_post_type", "invalid_json", "json_not_object", "invalid_cursor",
		"invalid_limit", "limit_required", "invalid_types", "no_user", "missing_argument", "superfluous_charset",
		"missing_charset", "unknown_method":
		return connectors.Invalid
	case "internal_error", "fatal_error", "request_timeout", "service_unavailable", "team_added_to_org":
		return connectors.Transient
	}
	return connectors.Unknown
}

// slackCode returns the Web API error code of err, if it is one.
func slackCode(err error) (string, bool) {
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err, true
	}
	return "", false
}

// classify turns an error from slack-go into a *connectors.Error for op.
// It never includes the request's URL, form or headers, so no token.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return httpapi.Error(op, nil, err)
	}
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		return &connectors.Error{Kind: connectors.RateLimited, Op: op, Err: fmt.Errorf("HTTP 429: retry after %s", rl.RetryAfter), RetryAfter: rl.RetryAfter}
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) {
		return &connectors.Error{Kind: httpapi.KindForStatus(sc.Code), Op: op, Err: fmt.Errorf("HTTP %d", sc.Code)}
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		msg := fmt.Errorf("slack error %q", se.Err)
		if se.Err == "missing_scope" && se.Needed != "" {
			msg = fmt.Errorf("slack error %q: the token needs scope %s", se.Err, se.Needed)
		}
		return &connectors.Error{Kind: kindForSlackError(se.Err), Op: op, Err: msg}
	}
	// Network errors (*url.Error): httpapi strips the URL.
	return httpapi.Error(op, nil, err)
}
