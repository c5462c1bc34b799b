/*
 * record_view_test.c -- cv_message_view: the copy of a record that
 * metadata embeds keeps the fields of the view type, at every depth, and
 * nothing else (no unknown fields left to pack or to leak).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ack.pb-c.h"
#include "cv_record.h"
#include "cv_transcode.h"
#include "report.pb-c.h"

static void
view_assert_no_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;

    assert_int_equal(m->n_unknown_fields, 0);
    assert_null(m->unknown_fields);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *slot = (const char *)m + f->offset;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n =
                *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *items =
                *(ProtobufCMessage *const *const *)slot;

            for (size_t j = 0; j < n; j++)
                view_assert_no_unknown(items[j]);
        } else if (*(ProtobufCMessage *const *)slot != NULL) {
            view_assert_no_unknown(*(ProtobufCMessage *const *)slot);
        }
    }
}

static void
test_view_acknowledgement(void **state)
{
    Cv__Acknowledgement a = CV__ACKNOWLEDGEMENT__INIT;
    Cv__EmbeddedAcknowledgement *v;
    json_t *doc;

    (void)state;
    a.acknowledgement_id = "gordackrecoveryescack-0123456789abcdef";
    a.provider = "webhook";
    a.notes = "reviewed";
    CV_SET(&a, acknowledgement_state, CV__ACK_STATE__ACK_STATE_ACCEPTED);
    CV_SET(&a, redaction_count, 2);
    v = (Cv__EmbeddedAcknowledgement *)cv_message_view(
        &a.base, &cv__embedded_acknowledgement__descriptor);
    assert_non_null(v);
    view_assert_no_unknown(&v->base);
    assert_string_equal(v->acknowledgement_id, a.acknowledgement_id);
    assert_string_equal(v->notes, "reviewed");
    assert_int_equal(v->acknowledgement_state,
                     CV__ACK_STATE__ACK_STATE_ACCEPTED);
    doc = cv_message_to_json(&v->base);
    assert_non_null(doc);
    assert_null(json_object_get(doc, "redaction_count"));
    assert_string_equal(json_string_value(json_object_get(doc, "provider")),
                        "webhook");
    json_decref(doc);
    protobuf_c_message_free_unpacked(&v->base, NULL);
    assert_null(
        cv_message_view(NULL, &cv__embedded_acknowledgement__descriptor));
}

/* A run with its report: what the view drops at depth 1, 2 and 3. */
static void
test_view_schedule_run(void **state)
{
    Cv__ScheduleRun run = CV__SCHEDULE_RUN__INIT;
    Cv__RunSchedule sched = CV__RUN_SCHEDULE__INIT;
    Cv__ExecutiveReport rep = CV__EXECUTIVE_REPORT__INIT;
    Cv__ReportExecutiveSummary sum = CV__REPORT_EXECUTIVE_SUMMARY__INIT;
    Cv__ProviderSummary ps = CV__PROVIDER_SUMMARY__INIT, *pss[] = {&ps, &ps};
    char *controls[] = {"windows are aligned to the UTC epoch"};
    Cv__EmbeddedScheduleRun *v;
    Cv__ScheduleRun *back;
    uint8_t *buf;
    size_t len;
    json_t *doc;

    (void)state;
    run.run_id = "gordackexecsched-0123456789abcdef";
    CV_SET(&run, redaction_count, 0);
    run.n_controls = 1;
    run.controls = controls;
    sched.schedule_id = "hourly-60";
    sched.window_start = "2026-12-05T08:00:00.000000Z";
    CV_SET(&sched, interval_minutes, 60);
    run.schedule = &sched;
    rep.executive_report_id = "gordackexecreport-0123456789abcdef";
    rep.run_id = run.run_id;
    rep.window_start = sched.window_start;
    CV_SET(&sum, escalation_count, 3);
    CV_SET(&sum, acknowledgement_count, 9);
    rep.executive_summary = &sum;
    ps.provider = "webhook";
    CV_SET(&ps, execution_count, 3);
    CV_SET(&ps, failed_delivery_count, 3);
    rep.n_provider_summary = 2;
    rep.provider_summary = pss;
    run.executive_report = &rep;

    v = (Cv__EmbeddedScheduleRun *)cv_message_view(
        &run.base, &cv__embedded_schedule_run__descriptor);
    assert_non_null(v);
    view_assert_no_unknown(&v->base);
    assert_string_equal(v->run_id, run.run_id);
    assert_int_equal(v->n_controls, 1);
    assert_string_equal(v->controls[0], controls[0]);
    assert_int_equal(v->schedule->interval_minutes, 60);
    assert_string_equal(v->schedule->window_start, sched.window_start);
    assert_string_equal(v->executive_report->executive_report_id,
                        rep.executive_report_id);
    assert_int_equal(v->executive_report->executive_summary->escalation_count,
                     3);
    assert_int_equal(v->executive_report->n_provider_summary, 2);
    assert_int_equal(v->executive_report->provider_summary[1]->execution_count,
                     3);

    doc = cv_message_to_json(&v->base);
    assert_non_null(doc);
    assert_null(json_object_get(doc, "redaction_count"));
    assert_null(
        json_object_get(json_object_get(doc, "schedule"), "schedule_id"));
    {
        json_t *r = json_object_get(doc, "executive_report");

        assert_null(json_object_get(r, "run_id"));
        assert_null(json_object_get(r, "window_start"));
        assert_null(json_object_get(json_object_get(r, "executive_summary"),
                                    "acknowledgement_count"));
        assert_null(json_object_get(
            json_array_get(json_object_get(r, "provider_summary"), 1),
            "failed_delivery_count"));
    }
    json_decref(doc);

    /* Packed and read back as the full record: the dropped fields are
     * really gone, the kept ones keep their numbers. */
    len = protobuf_c_message_get_packed_size(&v->base);
    assert_non_null(buf = malloc(len > 0 ? len : 1));
    protobuf_c_message_pack(&v->base, buf);
    back = cv__schedule_run__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(back);
    assert_false(back->has_redaction_count);
    assert_null(back->schedule->schedule_id);
    assert_null(back->executive_report->run_id);
    assert_false(
        back->executive_report->executive_summary->has_acknowledgement_count);
    assert_false(
        back->executive_report->provider_summary[0]->has_failed_delivery_count);
    assert_string_equal(back->executive_report->provider_summary[0]->provider,
                        "webhook");
    view_assert_no_unknown(&back->base);
    cv__schedule_run__free_unpacked(back, NULL);
    protobuf_c_message_free_unpacked(&v->base, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_acknowledgement),
        cmocka_unit_test(test_view_schedule_run),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
