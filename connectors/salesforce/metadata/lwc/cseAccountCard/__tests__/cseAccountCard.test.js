import { createElement } from "lwc";
import CseAccountCard from "c/cseAccountCard";
import { getRecord } from "lightning/uiRecordApi";
import getCard from "@salesforce/apex/CseCardController.getCard";
import act from "@salesforce/apex/CseCardController.act";

const sample = require("../../../../../../tests/fixtures/card.sample.json");

jest.mock("@salesforce/apex/CseCardController.getCard", () => ({ default: jest.fn() }), { virtual: true });
jest.mock("@salesforce/apex/CseCardController.act", () => ({ default: jest.fn() }), { virtual: true });

// What the UI API answers for the CSE_* fields the engine wrote back.
const RECORD = {
    apiName: "Account",
    id: "0015e00000ABCDEAAA",
    fields: {
        CSE_Health_Score__c: { value: 61.5 },
        CSE_Health_Band__c: { value: "at_risk" },
        CSE_Health_Trend__c: { value: -3.2 },
        CSE_Churn_Probability__c: { value: 0.22 },
        CSE_Churn_Horizon_Days__c: { value: 30 },
        CSE_Risk_Source__c: { value: "health" },
        CSE_Early_Warning__c: { value: false }, // a checkbox is never null: no warning model wrote a horizon yet
        CSE_Warning_Horizon_Days__c: { value: null },
        CSE_Risk_Drivers__c: { value: "adoption, support" },
        CSE_Expansion_Score__c: { value: 40 },
        CSE_Expansion_Type__c: { value: "plan" },
        CSE_Last_Scored__c: { value: "2026-12-03" },
    },
};

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const text = (root, selector) => root.shadowRoot.querySelector(selector)?.textContent;

function mount() {
    const element = createElement("c-cse-account-card", { is: CseAccountCard });
    element.recordId = RECORD.id;
    document.body.appendChild(element);
    return element;
}

afterEach(() => {
    while (document.body.firstChild) document.body.removeChild(document.body.firstChild);
    jest.clearAllMocks();
});

describe("c-cse-account-card", () => {
    it("renders the written-back CSE fields when the live card is unavailable", async () => {
        getCard.mockRejectedValue({ body: { message: "The Customer Success Engine answered 503" } });
        const element = mount();
        getRecord.emit(RECORD);
        await flush();
        expect(getCard).toHaveBeenCalledWith({ accountId: RECORD.id });
        expect(text(element, ".band")).toBe("At risk · 61.5");
        expect(text(element, ".churn")).toBe("22 % in 30 days (health)");
        expect(text(element, ".early-warning")).toBe("—");
        expect(text(element, ".expansion")).toBe("plan (40)");
        expect([...element.shadowRoot.querySelectorAll(".drivers li")].map((li) => li.textContent)).toEqual([
            "adoption",
            "support",
        ]);
        expect(text(element, ".live-error")).toBe("The Customer Success Engine answered 503");
        expect(text(element, ".onboarding")).toBe("—");
        expect(element.shadowRoot.querySelectorAll(".programs li")).toHaveLength(0);
    });

    it("shows the live card and posts an action through Apex", async () => {
        getCard.mockResolvedValue(JSON.stringify(sample));
        const updated = JSON.parse(JSON.stringify(sample));
        updated.card.touchpoints = [{ kind: "call", note: "Walked through exports", occurred_at: "2026-12-04T10:00:00", author: "csm" }];
        updated.notice = "Call logged";
        act.mockResolvedValue(JSON.stringify(updated));
        const element = mount();
        getRecord.emit(RECORD);
        await flush();
        expect(text(element, ".band")).toBe("Critical · 54.2");
        expect(text(element, ".churn")).toBe("37 % in 30 days (model)");
        expect(text(element, ".early-warning")).toBe("Flagged: likely to churn within 90 days");
        expect(text(element, ".tasks li")).toMatch(/^Offer a training session/);
        expect(text(element, ".onboarding")).toBe("Day 40 · adoption · 7/15 milestones · Behind");
        expect([...element.shadowRoot.querySelectorAll(".programs li")].map((li) => li.textContent)).toEqual([
            "Onboarding, days 0-90: at First outcome review (CRM task, sent 2026-11-24) · next step due 2026-12-24",
            "Quarterly NPS survey: control group — the program does not contact this account; nothing to do for it",
            "Onboarding: setup stalled: exited (recovered) 2026-11-20",
        ]);
        expect(text(element, ".requests li")).toBe("Requested: Retention campaigns by risk tier (requested)");
        const milestones = [...element.shadowRoot.querySelectorAll(".milestones li")];
        expect(milestones).toHaveLength(15);
        expect(milestones.map((li) => li.dataset.state).filter((s) => s === "met")).toHaveLength(7);
        expect(milestones[0].textContent).toBe("✓ Welcome sent (met 2026-10-25)");
        expect(milestones[6].textContent).toBe("✗ Core features used (missed, due day 14)");

        const note = element.shadowRoot.querySelector(".note");
        note.dispatchEvent(new CustomEvent("change", { detail: { value: "Walked through exports" } }));
        await flush();
        element.shadowRoot.querySelector(".log-call").click();
        await flush();
        expect(act).toHaveBeenCalledWith({
            accountId: RECORD.id,
            actionJson: JSON.stringify({ type: "touchpoint", kind: "call", note: "Walked through exports" }),
        });
        expect(text(element, ".notice")).toBe("Call logged");
    });

    it("holds the band with the bands' labels, and shows the override and the notice in words", async () => {
        getCard.mockResolvedValue(JSON.stringify(sample));
        const updated = JSON.parse(JSON.stringify(sample));
        updated.card.health.override = { band: "at_risk", band_label: "At risk", reason: "Exec sponsor re-engaged",
            author: "csm@example.com", created_at: "2026-12-04T10:00:00", expires_at: "2026-12-18T10:00:00" };
        updated.notice = "Band set to At risk until 2026-12-18";
        act.mockResolvedValue(JSON.stringify(updated));
        const element = mount();
        getRecord.emit(RECORD);
        await flush();
        const choice = element.shadowRoot.querySelector(".band-choice");
        expect(choice.options).toEqual([
            { label: "Healthy", value: "healthy" }, { label: "At risk", value: "at_risk" },
            { label: "Critical", value: "critical" }, { label: "Churning", value: "churning" },
        ]);
        expect(element.shadowRoot.querySelector(".program-choice").options).toEqual([
            { label: "Onboarding, days 0-90", value: "onboarding" }, { label: "Adoption push", value: "adoption" },
            { label: "Renewal preparation", value: "renewal" },
        ]);
        choice.dispatchEvent(new CustomEvent("change", { detail: { value: "at_risk" } }));
        element.shadowRoot.querySelector(".note").dispatchEvent(
            new CustomEvent("change", { detail: { value: "Exec sponsor re-engaged" } }));
        await flush();
        element.shadowRoot.querySelector(".snooze").click();
        await flush();
        expect(act).toHaveBeenCalledWith({
            accountId: RECORD.id,
            actionJson: JSON.stringify({ type: "override", band: "at_risk", reason: "Exec sponsor re-engaged", days: 14 }),
        });
        expect(text(element, ".override")).toBe(
            "Overridden: At risk by csm@example.com until 2026-12-18: Exec sponsor re-engaged");
        expect(text(element, ".notice")).toBe("Band set to At risk until 2026-12-18");
    });

    it("says when the account is in no program, and marks an onboarding control account", async () => {
        const control = JSON.parse(JSON.stringify(sample));
        control.card.program.enrollments = [];
        control.card.onboarding.control = true;
        getCard.mockResolvedValue(JSON.stringify(control));
        const element = mount();
        getRecord.emit(RECORD);
        await flush();
        expect(text(element, ".program-summary")).toBe("Not in a program");
        expect(text(element, ".onboarding")).toBe(
            "Day 40 · adoption · 7/15 milestones · Behind · control group (tracked only, not contacted)");
    });
});
