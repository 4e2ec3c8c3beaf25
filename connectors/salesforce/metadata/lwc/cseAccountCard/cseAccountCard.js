// The Customer Success Engine card on the Account record page. What is already written back (the CSE_* fields)
// renders at once through the UI API; the live card (drivers, programs, milestones, tasks, actions) comes from our backend
// through CseCardController, whose callout uses the CSE_Backend Named Credential.
import { LightningElement, api, wire } from "lwc";
import { getFieldValue, getRecord } from "lightning/uiRecordApi";
import HEALTH_SCORE from "@salesforce/schema/Account.CSE_Health_Score__c";
import HEALTH_BAND from "@salesforce/schema/Account.CSE_Health_Band__c";
import HEALTH_TREND from "@salesforce/schema/Account.CSE_Health_Trend__c";
import CHURN_PROBABILITY from "@salesforce/schema/Account.CSE_Churn_Probability__c";
import CHURN_HORIZON from "@salesforce/schema/Account.CSE_Churn_Horizon_Days__c";
import RISK_SOURCE from "@salesforce/schema/Account.CSE_Risk_Source__c";
import EARLY_WARNING from "@salesforce/schema/Account.CSE_Early_Warning__c";
import WARNING_HORIZON from "@salesforce/schema/Account.CSE_Warning_Horizon_Days__c";
import RISK_DRIVERS from "@salesforce/schema/Account.CSE_Risk_Drivers__c";
import EXPANSION_SCORE from "@salesforce/schema/Account.CSE_Expansion_Score__c";
import EXPANSION_TYPE from "@salesforce/schema/Account.CSE_Expansion_Type__c";
import LAST_SCORED from "@salesforce/schema/Account.CSE_Last_Scored__c";
import getCard from "@salesforce/apex/CseCardController.getCard";
import act from "@salesforce/apex/CseCardController.act";

const FIELDS = [HEALTH_SCORE, HEALTH_BAND, HEALTH_TREND, CHURN_PROBABILITY, CHURN_HORIZON, RISK_SOURCE, EARLY_WARNING,
  WARNING_HORIZON, RISK_DRIVERS, EXPANSION_SCORE, EXPANSION_TYPE, LAST_SCORED];
const BAND_LABELS = { healthy: "Healthy", at_risk: "At risk", critical: "Critical", churning: "Churning" };
const shown = (value, suffix = "") => (value === null || value === undefined ? "—" : `${value}${suffix}`);
// The program engine's state. A control-group enrollment is followed, never contacted: the card says so and shows no
// step or due date for it, so nothing reads as something to do for that program.
const day = (iso) => (iso ?? "—").slice(0, 10);
const STATUS_WORDS = { on_track: "On track", behind: "Behind", stuck: "Stuck" };
const MARKS = { met: "✓", missed: "✗", pending: "○" };
const enrollmentText = (e) => {
    if (e.control) return `${e.title}: control group — the program does not contact this account; nothing to do for it`;
    if (e.status === "completed") return `${e.title}: completed ${day(e.ended_at)}`;
    if (e.status === "exited") return `${e.title}: exited (${e.exit_reason ?? "—"}) ${day(e.ended_at)}`;
    const step = e.step ? `${e.step.label} (${e.step.channel_label}, ${e.step.outcome} ${day(e.step.at)})` : "not started";
    return `${e.title}: at ${step}${e.next_due_at ? ` · next step due ${day(e.next_due_at)}` : ""}`;
};

export default class CseAccountCard extends LightningElement {
    @api recordId;
    live;
    liveError;
    notice;
    busy = false;
    note = "";
    band = "healthy";
    program = "";

    @wire(getRecord, { recordId: "$recordId", fields: FIELDS })
    account;

    connectedCallback() {
        this.load(getCard({ accountId: this.recordId }));
    }

    async load(request) {
        this.busy = true;
        try {
            const payload = JSON.parse(await request);
            this.live = payload.card;
            this.notice = payload.notice;
            this.liveError = undefined;
        } catch (error) {
            this.liveError = error?.body?.message ?? error?.message ?? "The live card is not available";
        } finally {
            this.busy = false;
        }
    }

    field(name) {
        return this.account?.data ? getFieldValue(this.account.data, name) : undefined;
    }

    get bandLabel() {
        const band = this.live?.health.band ?? this.field(HEALTH_BAND);
        return BAND_LABELS[band] ?? "Not scored yet";
    }
    get score() { return shown(this.live?.health.score ?? this.field(HEALTH_SCORE)); }
    get trend() { return shown(this.live?.health.trend_7d ?? this.field(HEALTH_TREND)); }
    get churn() {
        // The one risk scale, over which horizon and from what (model or health): the live card, else the fields.
        const live = this.live?.churn;
        const p = live ? live.risk ?? live.probability : this.field(CHURN_PROBABILITY);
        if (p === null || p === undefined) return "—";
        const days = live ? live.horizon_days : this.field(CHURN_HORIZON);
        const source = live ? live.source : this.field(RISK_SOURCE);
        return `${Math.round(p * 100)} %${days ? ` in ${days} days` : ""}${source ? ` (${source})` : ""}`;
    }
    get earlyWarning() {
        const live = this.live?.churn;
        const flag = live ? live.early_warning : this.field(EARLY_WARNING);
        const days = live ? live.warning_horizon_days : this.field(WARNING_HORIZON);
        if (flag === null || flag === undefined || !days) return "—"; // no early-warning model yet
        return flag ? `Flagged: likely to churn within ${days} days` : `Not flagged (within ${days} days)`;
    }
    get timeToChurn() { return shown(this.live?.churn.days_to_churn, " days"); }
    get expansion() {
        const type = this.live?.expansion.type ?? this.field(EXPANSION_TYPE);
        if (!type) return "—"; // no expansion signal: no "(0)" to puzzle over
        return `${type} (${shown(this.live?.expansion.potential ?? this.field(EXPANSION_SCORE))})`;
    }
    get lastScored() { return shown(this.field(LAST_SCORED)); }
    get drivers() {
        const words = this.live?.drivers ?? String(this.field(RISK_DRIVERS) ?? "").split(/[;,]\s*/).filter(Boolean);
        return words.map((text, i) => ({ key: `d${i}`, text }));
    }
    get override() {
        const o = this.live?.health.override;
        return o ? `${o.band_label} by ${o.author} until ${o.expires_at.slice(0, 10)}: ${o.reason}` : undefined;
    }
    get onboarding() {
        const o = this.live?.onboarding;
        if (!o) return "—";
        if (!o.tracked) return "Not tracked (customer before the onboarding program)";
        const status = o.status ? ` · ${STATUS_WORDS[o.status]}` : "";
        const control = o.control ? " · control group (tracked only, not contacted)" : "";
        return `Day ${o.day} · ${o.phase} · ${o.met}/${o.total} milestones${status}${control}`;
    }
    get programs() {
        return (this.live?.program.enrollments ?? []).map((e, i) => ({ key: `p${i}`, text: enrollmentText(e) }));
    }
    get programSummary() {
        if (!this.live) return "—";
        return this.programs.length ? undefined : "Not in a program";
    }
    get milestones() {
        return (this.live?.onboarding.milestones ?? []).map((m) => ({
            key: m.key,
            state: m.state,
            text: `${MARKS[m.state]} ${m.name} ${m.state === "met" ? `(met ${m.met_on})` : `(${m.state === "missed" ? "missed, " : ""}due day ${m.due_day})`}`,
        }));
    }
    get hasMilestones() { return this.milestones.length > 0; }
    get tasks() {
        return (this.live?.tasks ?? []).map((t, i) => ({ key: `t${i}`, text: `${t.title} (due ${day(t.due)})` }));
    }
    get hasTasks() { return this.tasks.length > 0; }
    get requests() {
        return (this.live?.program.enrollment_requests ?? []).map((r, i) => ({ key: `r${i}`, text: `${r.title} (${r.status})` }));
    }
    get bandOptions() {
        const override = this.live?.actions.find((a) => a.type === "override");
        return (override?.bands ?? []).map((b) => ({ label: override.band_labels?.[b] ?? b, value: b }));
    }
    get programOptions() {
        const enroll = this.live?.actions.find((a) => a.type === "enroll");
        return (enroll?.programs ?? []).map((p) => ({ label: enroll.program_labels?.[p] ?? p, value: p }));
    }
    get noNote() { return this.busy || !this.note; }
    get noProgram() { return this.busy || !this.program; }

    handleNote(event) { this.note = event.detail.value; }
    handleBand(event) { this.band = event.detail.value; }
    handleProgram(event) { this.program = event.detail.value; }

    perform(action) {
        return this.load(act({ accountId: this.recordId, actionJson: JSON.stringify(action) })).then(() => {
            if (!this.liveError) this.note = "";
        });
    }
    handleLog(event) { return this.perform({ type: "touchpoint", kind: event.target.dataset.kind, note: this.note }); }
    handleSnooze() { return this.perform({ type: "override", band: this.band, reason: this.note, days: 14 }); }
    handleEndOverride() { return this.perform({ type: "clear_override" }); }
    handleEnroll() { return this.perform({ type: "enroll", program: this.program }); }
}
