from trial import roles as trial_roles


def roles(request):
    """Expose what the user may do, so navigation shows only that: on a trial's pages (the
    URL names its code), in that trial; elsewhere, in any of the user's trials."""
    user = request.user
    match = getattr(request, "resolver_match", None)
    code = match.kwargs.get("code") if match else None
    trial = None
    if code is not None:
        # A trial the user holds no role in (or none at all): nothing is offered.
        trial = trial_roles.trial_id_for_code(user, code) or 0
    return {
        "can_enroll": trial_roles.can_enroll(user, trial),
        "can_view_participants": trial_roles.can_view_participants(user, trial),
        "can_view_balance": trial_roles.can_view_balance(user, trial),
        "is_trial_manager": trial_roles.is_trial_manager(user, trial),
        "can_follow_up": trial_roles.can_follow_up(user, trial),
        "can_view_followup_summary": trial_roles.can_view_followup_summary(user, trial),
        "can_use_admin": trial_roles.may_use_admin(user),
    }
