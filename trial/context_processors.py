from trial import roles as trial_roles


def roles(request):
    """Expose what the user may do, so navigation shows only that."""
    user = request.user
    return {
        "can_enroll": trial_roles.can_enroll(user),
        "can_view_participants": trial_roles.can_view_participants(user),
        "can_view_balance": trial_roles.can_view_balance(user),
        "is_trial_manager": trial_roles.is_trial_manager(user),
        "can_follow_up": trial_roles.can_follow_up(user),
        "can_view_followup_summary": trial_roles.can_view_followup_summary(user),
    }
