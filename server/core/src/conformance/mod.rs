//! Conformance suites: plain async functions that every backend must pass, stamped into
//! one `#[tokio::test]` each by [`store_conformance_tests!`] and
//! [`ephemeral_conformance_tests!`] in the backend crates' tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: a failed step is a failed test"
)]

pub mod ephemeral;
pub mod messaging;
pub mod mfa;
pub mod operators;
pub mod orgs;
pub mod passkeys;
pub mod sessions;
pub mod signing_keys;
pub mod store;

/// Stamps every storage conformance test. `$make` is an async fn returning
/// `(guard, Arc<dyn Store>)`; the guard lives until the test ends (and cleans up).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:path) => {
        $crate::store_conformance_tests!(@in store $make;
            tenant_crud_round_trips_unicode,
            missing_rows_are_not_found,
            duplicate_slug_conflicts_with_the_constraint_name_even_after_delete,
            concurrent_updates_never_lose_a_change,
            pagination_is_stable_while_rows_are_inserted,
            listing_respects_the_tenant_scope,
            secret_keys_are_isolated_by_tenant,
            secret_key_expiry_follows_the_given_time,
            parallel_rotations_of_one_key_have_exactly_one_winner,
            deleting_a_tenant_stops_its_keys,
            parallel_first_starts_create_one_bootstrap_token,
            revoked_admin_tokens_are_not_found,
            audit_events_filter_and_paginate,
            failed_writes_leave_no_audit_event,
            audit_batches_are_all_or_nothing,
            user_emails_are_unique_per_tenant_ignoring_case,
            users_round_trip_unicode_and_are_isolated_by_tenant,
            users_list_filters_by_email_prefix_and_status,
            bulk_user_imports_are_all_or_nothing,
            users_are_read_in_batches_within_the_tenant,
        );
        $crate::store_conformance_tests!(@in sessions $make;
            refresh_tokens_rotate_once_and_reuse_revokes_the_session,
            parallel_refreshes_of_one_token_rotate_at_most_once,
            refresh_tokens_and_sessions_expire_by_the_given_time,
            sessions_are_isolated_by_tenant,
            sign_out_and_user_deletion_end_sessions,
            users_list_and_revoke_only_their_own_sessions,
            a_spent_refresh_token_within_the_grace_window_returns_the_same_successor,
            sign_ins_are_recorded_in_one_transaction,
            ended_sessions_are_swept_with_their_tokens,
        );
        $crate::store_conformance_tests!(@in signing_keys $make;
            signing_keys_rotate_through_next_active_retired,
            due_rotation_happens_once_however_many_replicas_try,
        );
        $crate::store_conformance_tests!(@in messaging $make;
            one_time_secrets_are_single_use_and_superseded,
            parallel_redemptions_have_exactly_one_winner,
            code_attempts_are_capped_and_redemption_is_atomic,
            outbox_messages_are_claimed_once_and_finished,
            template_overrides_round_trip_per_tenant,
            a_sign_up_is_stored_whole_or_not_at_all,
            expired_one_time_secrets_are_swept,
            finished_messages_are_swept,
        );
        $crate::store_conformance_tests!(@in mfa $make;
            totp_steps_are_accepted_once_and_in_order,
            recovery_codes_are_single_use_even_in_parallel,
            the_sign_in_read_carries_the_second_factors,
        );
        $crate::store_conformance_tests!(@in passkeys $make;
            passkey_counters_only_advance_and_rows_are_scoped,
            credential_ids_are_unique_everywhere_and_sign_ups_are_atomic,
        );
        $crate::store_conformance_tests!(@in orgs $make;
            organizations_nest_and_list_by_subtree,
            the_last_owner_stays_and_removal_ends_org_sessions,
            invitations_are_accepted_once,
            verified_domains_belong_to_one_organization,
        );
        $crate::store_conformance_tests!(@in operators $make; operators_and_their_sessions);
    };
    (@in $module:ident $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, store) = $make().await;
                $crate::conformance::$module::$name(store.as_ref()).await;
            }
        )*
    };
}

/// Stamps every ephemeral-store conformance test. `$make` is an async fn returning
/// `(guard, Arc<dyn EphemeralStore>)` whose keys no other test uses; the guard lives
/// until the test ends.
#[macro_export]
macro_rules! ephemeral_conformance_tests {
    ($make:path) => {
        $crate::ephemeral_conformance_tests!(@each $make;
            counters_count_within_a_window_and_reset_after,
            counters_are_read_without_counting,
            one_time_values_are_taken_once,
            parallel_takes_have_exactly_one_winner,
            put_once_refuses_a_taken_key,
            cache_entries_expire_and_can_be_deleted,
            published_messages_reach_every_subscriber,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, store) = $make().await;
                $crate::conformance::ephemeral::$name(store.as_ref()).await;
            }
        )*
    };
}
