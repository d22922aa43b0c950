import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("account_bank_connection_list_tour", {
    steps: () => [
        {
            content: "The list of bank connections shows the bank",
            trigger: ".o_list_view .o_data_cell:contains('Belfius')",
            run: "click",
        },
        {
            content: "The connection opens in its form",
            trigger: ".o_form_view .o_field_widget[name='state']",
        },
    ],
});
